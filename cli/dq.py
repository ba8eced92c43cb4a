"""`dq --date D`: the data-quality checks of a day."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.console import console, parse_date, settings
from common.errors import PlatformError


def dq(
    date: Annotated[str, typer.Option(help="the UTC day, YYYY-MM-DD")],
    save: Annotated[bool, typer.Option("--record/--no-record", help="store the results in features.dq_results")] = True,
) -> None:
    """Run the data-quality checks for a day; exits 1 when a check of severity ERROR fails."""
    from datetime import UTC, datetime

    from dq_checks import record, run_checks

    s = settings()
    day = parse_date(date, "--date")
    if day > datetime.now(UTC).date():
        raise PlatformError(f"--date {day} is in the future", "pick today or a past day")
    results = run_checks(s, day)
    t = Table(title=f"data quality, {day}")
    for col in ("check", "feature", "result", "severity", "message"):
        t.add_column(col)
    for r in results:
        verdict = "[green]pass" if r.passed else ("[red]FAIL" if r.severity == "ERROR" else "[yellow]fail")
        t.add_row(r.check, r.feature, verdict, r.severity, r.message)
    console.print(t)
    for r in results:
        if not r.passed and r.sample:
            console.print(f"[bold]{r.check} {r.feature}[/bold]: " + "; ".join(r.sample))
    if save:
        console.print(f"recorded in {s.clickhouse.database}.dq_results as run {record(s, results)}")
    blocking = [r for r in results if r.blocking]
    if blocking:
        console.print(f"[bold red]{len(blocking)} check(s) of severity ERROR failed")
        raise typer.Exit(1)
