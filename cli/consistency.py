"""`consistency --date D`: the day's served feature values against the training-set code's."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.console import console, parse_date, settings
from common.errors import PlatformError


def consistency(
    date: Annotated[str, typer.Option(help="the UTC day of the requests, YYYY-MM-DD")],
    save: Annotated[bool, typer.Option("--record/--no-record", help="store the verdicts in dq_results")] = True,
) -> None:
    """Recompute the day's logged requests as known at their times (the training-set code)
    and compare with what the API served; exits 1 when a feature fails at ERROR (docs/serving.md)."""
    from datetime import UTC, datetime

    from batch.serving_consistency import compare
    from dq_checks import record
    from dq_checks.serving import serving_consistency

    s = settings()
    day = parse_date(date, "--date")
    if day > datetime.now(UTC).date():
        raise PlatformError(f"--date {day} is in the future", "pick today or a past day")
    run = compare(s, day)
    results = serving_consistency(s, day)
    t = Table(title=f"served against offline, {day}: {run.requests:,} requests (run {run.run_id})")
    for col in ("feature", "values", "equal", "served only", "offline only", "differ", "in flight", "stale"):
        t.add_column(col, justify="right" if col != "feature" else "left")
    t.add_column("unexplained", justify="right")
    t.add_column("SMAPE", justify="right")
    t.add_column("result")
    for r in results:
        m = r.metrics
        if "values" not in m:
            t.add_row(r.feature, *[""] * 9, "[yellow]" + r.message)
            continue
        verdict = "[green]pass" if r.passed else ("[red]FAIL" if r.severity == "ERROR" else "[yellow]fail")
        counts = ("served_not_offline", "offline_not_served", "value_mismatches", "explained_in_flight")
        t.add_row(
            r.feature,
            f"{int(m['values']):,}",
            f"{m['equal_rate']:.2%}",
            *(f"{int(m[c]):,}" for c in counts),
            f"{int(m['explained_stale']):,}",
            f"{int(m['unexplained']):,}",
            f"{m['smape']:.4f}" if "smape" in m else "",
            verdict,
        )
    console.print(t)
    for r in results:  # in full, for a terminal too narrow for the table and for logs
        worst = f"; worst users: {'; '.join(r.sample)}" if r.sample else ""
        console.print(f"[bold]{r.feature}[/bold]: {r.message}{worst}")
    if save:
        console.print(f"verdicts recorded in {s.clickhouse.database}.dq_results as run {record(s, results)}")
    blocking = [r for r in results if r.blocking]
    if blocking:
        console.print(f"[bold red]{len(blocking)} feature(s) fail at ERROR: {', '.join(r.feature for r in blocking)}")
        raise typer.Exit(1)
