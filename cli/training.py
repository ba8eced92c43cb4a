"""`lambda-features training-set`: point-in-time training sets (batch/training_set.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.console import console, settings


def training_set(
    spine: Annotated[Path, typer.Option(help="Parquet or CSV: user_id, ts and any label columns")],
    features: Annotated[str, typer.Option(help="comma-separated feature names")],
    out: Annotated[Path, typer.Option(help="the Parquet output (a folder, as Spark writes it)")],
    as_known_at: Annotated[
        bool,
        typer.Option(
            "--as-known-at",
            help="count an event only once it had also arrived (matches what online serving showed at ts)",
        ),
    ] = False,
) -> None:
    """One row per spine row with each feature's value as it was at the row's ts (docs/training.md)."""
    from batch.training_set import build

    s = settings()
    names = [n.strip() for n in features.split(",") if n.strip()]
    r = build(s, spine, names, out, as_known_at)
    mode = "as known at ts" if r.as_known_at else "by event time"
    console.print(f"training set: {r.rows:,} rows, {len(names)} feature(s), {mode} -> {r.out}")
    console.print(
        "seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in r.seconds.items()) + f"; {r.events_read:,} events read"
    )
    if r.as_known_at and r.without_arrival:
        console.print(
            f"[yellow]{r.without_arrival:,} archived events had no arrival time: on-time ones counted from their "
            f"event time, {r.late_without_arrival:,} late ones left out"
        )
