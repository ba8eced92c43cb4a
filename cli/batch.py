"""`batch reconcile|features-30d|publish|backfill|serving-consistency`: the batch layer over the archive."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.console import console, parse_date, settings

app = typer.Typer(no_args_is_help=True, help="The batch layer (PySpark) over the raw-event archive.")
Publish = Annotated[bool, typer.Option(help="write the online store too; --no-publish leaves it to `batch publish`")]


@app.command("reconcile")
def reconcile(date: Annotated[str, typer.Option(help="the UTC day, YYYY-MM-DD")]) -> None:
    """Recompute every streaming feature for a day from the archive into the lake."""
    from batch.reconcile import reconcile as reconcile_day

    s = settings()
    day = parse_date(date, "--date")
    results = reconcile_day(s, day)
    t = Table(title=f"reconciled {day}")
    for col in ("day", "feature", "rows", "lake"):
        t.add_column(col, justify="right" if col == "rows" else "left")
    for d, r in results.items():
        for name, n in r.rows.items():
            t.add_row(f"{d} (lead-in)" if r.lead_in else str(d), name, f"{n:,}", r.lake[name])
    console.print(t)
    result = results[day]
    if result.missing_days:
        console.print(
            f"[yellow]no archive for {', '.join(result.missing_days)}: per-user state counts only the days present"
        )


@app.command("features-30d")
def features_30d(
    date: Annotated[str, typer.Option(help="the as-of UTC day, YYYY-MM-DD")],
    publish: Publish = True,
    rescan: Annotated[
        bool, typer.Option(help="recompute from the raw events of all 30 days, not the daily partials (a check)")
    ] = False,
) -> None:
    """The 30-day features as of a day: lake and ClickHouse, then the online store."""
    from batch.features_30d import run

    s = settings()
    day = parse_date(date, "--date")
    result = run(s, day, publish=publish, rescan=rescan)
    for name, n in result.rows.items():
        console.print(f"{name} as of {day}: {n:,} rows -> {result.lake[name]} and features.{name}")
    if result.partials_computed:
        console.print(f"daily partials computed for {len(result.partials_computed)} day(s)")
    if result.users_published is None:
        console.print(f"not published: run `lambda-features batch publish --date {day}` to publish")
    else:
        console.print(f"published to the online store for {result.users_published:,} users")


@app.command("publish")
def publish(date: Annotated[str, typer.Option(help="the as-of UTC day, YYYY-MM-DD")]) -> None:
    """Publish the 30-day features as of a day from the lake to the online store."""
    from batch.publish import publish_online

    s = settings()
    day = parse_date(date, "--date")
    console.print(f"published the 30-day features as of {day} for {publish_online(s, day):,} users")


@app.command("backfill")
def backfill(
    start: Annotated[str, typer.Option(help="first UTC day, YYYY-MM-DD")],
    end: Annotated[str, typer.Option(help="last UTC day, YYYY-MM-DD")],
    publish: Publish = True,
) -> None:
    """Reconcile and compute the 30-day features for every day of a range (re-runnable)."""
    from batch.backfill import backfill as backfill_range

    s = settings()
    result = backfill_range(s, parse_date(start, "--start"), parse_date(end, "--end"), publish=publish)
    console.print(f"backfilled {len(result.done)} day(s) in {result.seconds:.0f}s")
    if result.skipped:
        console.print(f"[yellow]no archive, skipped: {', '.join(result.skipped)}")
    if result.lead_in:
        console.print(
            f"lead-in day(s), their sliding windows that reach into the next day: {', '.join(result.lead_in)}"
        )
    for day, gaps in result.incomplete.items():
        console.print(f"[yellow]{day} incomplete (marked in features.reconciled_days): {gaps}")


@app.command("serving-consistency")
def serving_consistency(date: Annotated[str, typer.Option(help="the UTC day of the requests, YYYY-MM-DD")]) -> None:
    """Archive the serving log and compare the day's served values with the training-set
    code's into features.serving_consistency (no verdict: `lambda-features consistency` gives one)."""
    from batch.serving_consistency import compare

    run = compare(settings(), parse_date(date, "--date"))
    console.print(
        f"{run.requests:,} requests of {run.day} compared (run {run.run_id}): "
        + ", ".join(f"{n} {fc.equal_rate:.2%} equal" for n, fc in run.features.items())
    )
