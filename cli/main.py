"""`lambda-features`: the platform's command line, assembled from one module per command group."""

from __future__ import annotations

import sys

import typer

from cli import batch, catalog, consistency, demo, dq, generate, repo, serve, services, sql, stream, tier, training, ui
from cli.console import console
from common.errors import PlatformError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Lambda feature platform.")
app.command()(demo.demo)
app.command()(stream.replay)
app.command()(generate.generate)
app.command()(sql.sql)
app.command()(dq.dq)
app.command()(consistency.consistency)
app.command()(ui.ui)
app.command()(serve.serve)
app.command("training-set")(training.training_set)
repo.register(app)
app.add_typer(stream.app, name="stream")
app.add_typer(batch.app, name="batch")
app.add_typer(services.app, name="services")
app.add_typer(tier.app, name="tier")
app.add_typer(catalog.app, name="catalog")


def main() -> None:
    try:
        app()
    except PlatformError as e:
        console.print(f"[bold red]error:[/bold red] {e.what}")
        if e.fix:
            console.print(f"  [bold]fix:[/bold] {e.fix}")
        sys.exit(2)


if __name__ == "__main__":
    main()
