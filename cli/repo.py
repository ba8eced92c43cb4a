"""`plan` and `apply`: what running the feature repository (LAMBDA_FEATURES_FEATURE_REPO) would
change against the registry, and doing it (docs/features.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from cli.console import console, settings
from common.errors import PlatformError

DROP = typer.Option("--drop-removed", help="drop the tables of removed features (default: keep them)")


def _show(plan) -> None:
    for line in plan.lines():
        console.print(escape(line))


def plan(drop_removed: Annotated[bool, DROP] = False) -> None:
    """Print what `apply` would change. Exits 0 when nothing would, 2 when something would, 1 on an error."""
    from orchestration.repo_plan import build_plan

    try:
        p = build_plan(settings(), drop_removed)
    except PlatformError as e:  # 2 means "changes": an error must not read as one
        console.print(f"[bold red]error:[/bold red] {escape(e.what)}")
        if e.fix:
            console.print(f"  [bold]fix:[/bold] {escape(e.fix)}")
        raise typer.Exit(1) from None
    _show(p)
    raise typer.Exit(2 if p.changes else 0)


def apply(
    yes: Annotated[bool, typer.Option("--yes", help="do it without asking")] = False,
    drop_removed: Annotated[bool, DROP] = False,
) -> None:
    """Print the plan, ask (unless --yes), then do it: ClickHouse DDL, stream redeploy through a
    savepoint, the backfill of new and changed features from the archive, the registry."""
    from orchestration.repo_apply import apply as do_apply
    from orchestration.repo_plan import build_plan

    s = settings()
    p = build_plan(s, drop_removed)
    _show(p)
    if not p.changes:
        return
    if not yes and not typer.confirm("apply this plan?", default=False):
        raise typer.Exit(1)
    do_apply(s, p, say=lambda m: console.print(escape(m)))
    console.print("[green]applied[/green]")


def register(app: typer.Typer) -> None:
    """Add `plan` and `apply` to the platform's command line."""
    app.command()(plan)
    app.command()(apply)
