"""`catalog load|relay|status`: the item catalogue in its database, and its changes on Kafka."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.console import console, settings

app = typer.Typer(no_args_is_help=True, help="The item catalogue: load it, relay its changes, show its state.")


@app.command("load")
def load(file: Annotated[Path, typer.Argument(help="CSV with a header, or JSON lines (.jsonl)")]) -> None:
    """Upsert items (item_id, category_id, brand, price, title) from a file into the catalogue table `items`."""
    from catalog.load import load_file

    result = load_file(settings(), file)
    console.print(f"{result.rows} item(s) loaded from {file}")


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
