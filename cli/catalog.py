"""`catalog load|relay|status`: the item catalogue in its database, and its changes on Kafka."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from cli.console import console, settings

app = typer.Typer(no_args_is_help=True, help="The item catalogue: load it, relay its changes, show its state.")


@app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="CSV with a header, or JSON lines (.jsonl)")],
    at: Annotated[
        datetime | None,
        typer.Option(help="when the changes take effect (UTC unless the time says otherwise; default now)"),
    ] = None,
) -> None:
    """Upsert items (item_id, category_id, brand, price, title) from a file into the catalogue table `items`.
    `--at` backdates the changes, to give past events (a replay, a backfill) the catalogue they saw."""
    from catalog.load import load_file

    when = at if at is None or at.tzinfo else at.replace(tzinfo=UTC)
    result = load_file(settings(), file, at=when)
    console.print(f"{result.rows} item(s) loaded from {file}" + (f", effective {when.isoformat()}" if when else ""))


@app.command("relay")
def relay() -> None:
    """Relay every catalogue change from the binlog to the Kafka topic, in debezium-json, until Ctrl-C or SIGTERM."""
    from catalog.relay import run_relay

    r = run_relay(settings())
    console.print(f"catalogue relay stopped; {r.relayed} change(s) relayed")


@app.command("status")
def status() -> None:
    """Rows, the newest change, and how far the relay is behind the binlog."""
    from catalog.observe import observe

    for k, v in observe(settings()).items():
        console.print(f"{k}: {v}")
