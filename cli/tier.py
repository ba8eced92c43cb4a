"""`tier run|restore|verify|status`: feature days older than TIERING__HOT_DAYS in S3/OSS."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.console import console, parse_date, settings, size

app = typer.Typer(no_args_is_help=True, help="Tiering: feature days older than hot_days to S3/OSS.")


@app.command("run")
def run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what is due, with sizes; move nothing")] = False,
    today: Annotated[str | None, typer.Option(help="the day to count from, YYYY-MM-DD (default: UTC today)")] = None,
    include_restored: Annotated[bool, typer.Option(help="also move days brought back by `tier restore`")] = False,
) -> None:
    """Move every feature day older than tiering.hot_days to the cold tier."""
    import tiering

    s = settings()
    report = tiering.run(s, parse_date(today, "--today") if today else None, dry_run, include_restored)
    t = Table(title=f"{'due' if dry_run else 'moved'}: days before {report.cutoff} (today {report.today})")
    t.add_column("table")
    t.add_column("day")
    t.add_column("rows", justify="right")
    t.add_column("hot size" if dry_run else "Parquet", justify="right")
    if not dry_run:
        t.add_column("objects", justify="right")
        t.add_column("uri")
    for p in report.planned if dry_run else []:
        t.add_row(p.table, str(p.day), f"{p.rows:,}", size(p.bytes))
    for m in report.moves:
        t.add_row(m.table, str(m.day), f"{m.rows:,}", size(m.bytes), str(m.objects), m.uri)
    console.print(t)
    if dry_run:
        console.print(f"{len(report.planned)} day(s), {size(sum(p.bytes for p in report.planned))} in ClickHouse")
    else:
        console.print(
            f"moved {len(report.moves)} day(s): {report.rows:,} rows, {report.objects} objects, {size(report.bytes)}"
        )
    for p in report.skipped:
        console.print(f"[yellow]{p.table} {p.day} changed during its move; it stays hot until the next run")


@app.command("restore")
def restore(
    table: Annotated[str, typer.Option(help="the table, e.g. uv_1m_stream")],
    date: Annotated[str, typer.Option(help="the UTC day, YYYY-MM-DD")],
) -> None:
    """Bring a cold day back into ClickHouse; it stays hot until `tier run --include-restored`."""
    import tiering

    s = settings()
    day = parse_date(date, "--date")
    rows = tiering.restore(s, table, day)
    console.print(f"restored {table} {day}: {rows:,} rows back in ClickHouse")


@app.command("verify")
def verify() -> None:
    """Check every cold day: rows hot + cold equal the rows recorded before its move."""
    import tiering

    checks = tiering.verify(settings())
    bad = [c for c in checks if not c.ok]
    for c in bad:
        console.print(f"[red]{c.table} {c.day}: recorded {c.recorded}, hot {c.hot}, cold {c.cold} {c.error}")
    console.print(f"{len(checks) - len(bad)} of {len(checks)} cold day(s) complete")
    if bad:
        raise typer.Exit(1)


@app.command("status")
def status() -> None:
    """The tiering manifest: every day moved (cold), being moved, or restored."""
    import tiering

    t = Table()
    for col in ("table", "day", "state", "rows", "bytes", "objects", "uri"):
        t.add_column(col)
    for e in tiering.status(settings()):
        t.add_row(e.table, str(e.day), e.state, f"{e.rows:,}", size(e.bytes), str(len(e.objects)), e.uri)
    console.print(t)
