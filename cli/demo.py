"""`demo`: the whole graph through Dagster on the embedded defaults, printing what landed where."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.console import console, settings
from common.errors import PlatformError


def _print_run(title: str, run) -> None:
    t = Table(title=f"{title}: {'succeeded' if run.success else 'FAILED'} (run {run.run_id[:8]})")
    t.add_column("asset")
    t.add_column("what landed")
    for key, meta in run.materialized.items():
        shown = {k: v for k, v in meta.items() if isinstance(v, int | float | str) and k != "preview"}
        t.add_row(key, ", ".join(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in shown.items()))
    console.print(t)
    if run.checks:
        c = Table(title="data-quality checks")
        for col in ("asset", "check", "result", "severity"):
            c.add_column(col)
        for asset, check, passed, severity in run.checks:
            c.add_row(asset, check, "[green]passed" if passed else "[red]failed", "" if passed else severity)
        console.print(c)
        if any(check == "served_equals_offline" and not passed for _, check, passed, _ in run.checks):
            console.print(
                "served_equals_offline compares what the API served (its log) with the training-set code; "
                "the demo sends the API no requests, so none was logged and the check warns "
                "(docs/serving.md, 'Online/offline consistency')"
            )


def _print_fingerprints(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> bool:
    t = Table(title="serving views before and after tiering")
    t.add_column("view", no_wrap=True)
    t.add_column("rows before", justify="right")
    t.add_column("rows after", justify="right")
    t.add_column("checksum of every row")
    for name, was in before.items():
        now = after.get(name, (0, 0))
        same = "[green]equal" if now[1] == was[1] else "[red]DIFFERENT"
        t.add_row(f"features.{name}", f"{was[0]:,}", f"{now[0]:,}", same)
    console.print(t)
    return before == after


def _print_catalogue(cat) -> None:
    t = Table(title="the item catalogue (MariaDB, relayed to Kafka by binlog CDC)")
    t.add_column("version")
    t.add_column("effective (UTC)")
    t.add_column("what it holds")
    t.add_row(
        "1", f"{cat.first[1]:%Y-%m-%d %H:%M}",
        f"{cat.items:,} items with brand, category and price; {cat.unknown_items:,} items of the events left out "
        f"({cat.unknown_event_share:.2%} of the events with an item: referential_completeness shows it)",
    )  # fmt: skip
    t.add_row(
        "2", f"{cat.second[1]:%Y-%m-%d %H:%M}",
        f"{cat.changed_brands:,} items with a new brand, {cat.changed_prices:,} with a new price",
    )  # fmt: skip
    console.print(t)
    console.print(
        f"loaded as [bold]lambda-features catalog load {cat.first[0]} --at '{cat.first[1]:%Y-%m-%d %H:%M:%S}'[/bold] "
        "would, then the second version the same way"
    )


def _print_services(s) -> None:
    from common.services import local_services

    running = [svc for svc in local_services(s, catalog=True) if svc.pid()]
    if running:
        console.print(
            "the demo leaves the local services running for the commands above: "
            + ", ".join(f"{svc.name} on 127.0.0.1:{svc.port}" for svc in running)
            + "; [bold]lambda-features services stop[/bold] stops them"
        )


def demo(
    events: Annotated[int, typer.Option(help="generated events (0: replay the bundled Taobao slice)")] = 200_000,
    days: Annotated[int, typer.Option(help="days the generated events span")] = 3,
    taobao: Annotated[Path | None, typer.Option(help="Taobao CSV to replay instead of generating")] = None,
    seed: int = 42,
) -> None:
    """The whole graph through Dagster on the embedded defaults: the stream over generated
    events spanning several days, then for those days reconciliation, 30-day features,
    ClickHouse loads, checks and the online store, then tiering of all days but the last to
    the cold tier. Prints what landed where."""
    from common.archive import archived_days
    from features.samples import TAOBAO_SAMPLE
    from orchestration.demo import (
        generate_events,
        generator_config,
        load_catalogue,
        reset_outputs,
        serving_fingerprints,
        tiering_partition,
    )
    from orchestration.instance import materialize_days, replay_stream

    s = settings()
    reset_outputs(s)
    if taobao or events == 0:
        fmt, path = "taobao", taobao or TAOBAO_SAMPLE
        console.print(
            "[yellow]the Taobao slice's items have no catalogue: brand_clicks_1h and category_purchases_1h "
            "count them under a NULL brand and category"
        )
    else:
        cfg = generator_config(events, days, seed)
        fmt, path = "jsonl", generate_events(s, cfg, events)
        logging.info("generated %d events over %d days into %s", events, days, path)
        if s.catalog.url:
            console.print("[yellow]the catalogue at CATALOG__URL is used as it is: the demo loads none into it")
        else:
            _print_catalogue(load_catalogue(s, cfg, path, days))
    stream = replay_stream(s, [str(path)], fmt)
    _print_run("demo: the stream job (Dagster asset stream_job)", stream)
    if not stream.success:
        raise PlatformError(f"the stream job failed: {stream.error}", f"see run {stream.run_id} in the Dagster UI")
    archived = archived_days(s)
    before = [d for d in archived if d < s.orchestration.start_date]
    if before:
        console.print(
            f"[yellow]archived days before the first daily partition ({s.orchestration.start_date}), left out: "
            f"{', '.join(map(str, before))} (late events of the generator); ORCHESTRATION__START_DATE moves it"
        )
        archived = [d for d in archived if d >= s.orchestration.start_date]
    if archived:
        daily = materialize_days(s, archived[0], archived[-1])
        _print_run(f"demo: the daily graph for {archived[0]}..{archived[-1]} (Dagster job daily_batch)", daily)
        if not daily.success:
            raise PlatformError(f"the daily graph failed: {daily.error}", f"see run {daily.run_id} in the Dagster UI")
        as_of = tiering_partition(s, archived, datetime.now(UTC).date())
        views_before = serving_fingerprints(s)
        tiering = materialize_days(s, as_of, as_of, "daily_tiering")
        _print_run(f"demo: tiering as of {as_of} (Dagster job daily_tiering)", tiering)
        if not tiering.success:
            raise PlatformError(f"tiering failed: {tiering.error}", f"see run {tiering.run_id} in the Dagster UI")
        if not _print_fingerprints(views_before, serving_fingerprints(s)):
            raise PlatformError("a serving view answers differently after tiering", "run `lambda-features tier verify`")
    console.print(
        "\nnext:\n"
        '  [bold]lambda-features sql "SELECT * FROM features.hot_items_5m ORDER BY window_start, rank LIMIT 10"[/bold]'
        " (the serving view: batch rows for reconciled days, stream rows otherwise, cold days from the cold tier)\n"
        "  [bold]lambda-features tier status[/bold] (what moved to the cold tier)\n"
        f"  [bold]lambda-features ui[/bold] (the runs, assets and checks on http://127.0.0.1:{s.orchestration.ui_port})"
    )
    _print_services(s)
