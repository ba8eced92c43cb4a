"""`lambda-features`: generate, replay, demo, sql, stream, services."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from datetime import date as Date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from common.errors import PlatformError
from common.settings import Settings, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Lambda feature platform.")
batch_app = typer.Typer(no_args_is_help=True, help="The batch layer (PySpark) over the raw-event archive.")
stream_app = typer.Typer(no_args_is_help=True, help="The long-running stream job.")
services_app = typer.Typer(
    no_args_is_help=True, help="Local Redis, Kafka and ClickHouse (chDB) services of the embedded defaults."
)
app.add_typer(stream_app, name="stream")
app.add_typer(batch_app, name="batch")
app.add_typer(services_app, name="services")
tier_app = typer.Typer(no_args_is_help=True, help="Tiering: feature days older than hot_days to S3/OSS.")
app.add_typer(tier_app, name="tier")
console = Console()


def _settings() -> Settings:
    logging.basicConfig(
        level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False, level=logging.INFO)]
    )
    for noisy in ("py4j", "kafka", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return load_settings()


def _print_summary(summary, title: str) -> None:
    t = Table(title=title)
    t.add_column("what")
    t.add_column("count", justify="right")
    t.add_row("events read", f"{summary.events_in:,}")
    t.add_row("dead letters (unparseable)", f"{summary.parse_dead_letters:,}")
    t.add_row("dead letters (rejected by rules)", f"{summary.stream_dead_letters:,}")
    t.add_row("events in the archive (all runs)", f"{summary.archived:,}")
    t.add_row("  of which late", f"{summary.late:,}")
    for table, n in summary.table_rows.items():
        t.add_row(f"rows in {table}", f"{n:,}")
    t.add_row("users in the online store (Redis)", f"{summary.redis_keys:,}")
    t.add_row("seconds", f"{summary.seconds:.1f}")
    t.add_row("events/s", f"{summary.rate:,.0f}")
    console.print(t)
    for k, v in summary.locations.items():
        console.print(f"[bold]{k}[/bold]: {v}")


@app.command()
def replay(
    paths: Annotated[list[Path], typer.Argument(help="input files, replayed in order")],
    fmt: Annotated[str, typer.Option("--format", help="taobao | rees46 | jsonl")] = "jsonl",
    keep_services: Annotated[bool, typer.Option(help="leave local Redis/Kafka running")] = False,
) -> None:
    """Run the stream job over files as a bounded stream; exits once every window fired."""
    from streaming.job import FileSource
    from streaming.runner import run_job
    from streaming.staging import stage_files

    s = _settings()
    staged = s.staging_dir / "runs" / f"replay-{uuid.uuid4().hex[:8]}.csv"
    stage = stage_files(fmt, paths, staged, s.dead_letter_dir / "parse")
    logging.info("staged %d events from %d file(s), %d unparseable", stage.events, len(paths), stage.dead_letters)
    summary = run_job(s, FileSource(stage.path), stage, keep_services=keep_services)
    _print_summary(summary, "replay")


@app.command()
def demo(
    events: Annotated[int, typer.Option(help="generated events (0: replay the bundled Taobao slice)")] = 200_000,
    days: Annotated[int, typer.Option(help="days the generated events span")] = 3,
    taobao: Annotated[Path | None, typer.Option(help="Taobao CSV to replay instead of generating")] = None,
    seed: int = 42,
) -> None:
    """The whole graph through Dagster on the embedded defaults: the stream over generated
    events spanning several days, then for those days reconciliation, 30-day features,
    ClickHouse loads, checks and the online store. Prints what landed where."""
    from features.adapters import to_json
    from features.generator import GeneratorConfig, generate
    from orchestration.instance import materialize_days, replay_stream
    from streaming.runner import reset_stream_outputs

    s = _settings()
    reset_stream_outputs(s)
    if taobao or events == 0:
        fmt, path = (
            "taobao",
            taobao or Path(__file__).resolve().parent.parent.parent / "shared/datasets/taobao_user_behavior_sample.csv",
        )
    else:
        fmt, path = "jsonl", s.staging_dir / "runs" / f"demo-{seed}-{events}-{days}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            for e in generate(GeneratorConfig(seed=seed, events_per_second=events / (days * 86400)), events):
                fh.write(to_json(e) + b"\n")
        logging.info("generated %d events over %d days into %s", events, days, path)
    stream = replay_stream(s, [str(path)], fmt)
    _print_run("demo: the stream job (Dagster asset stream_job)", stream)
    archived = sorted(Date.fromisoformat(p.name.split("=")[1]) for p in s.archive_dir.glob("dt=*"))
    before = [d for d in archived if d < s.orchestration.start_date]
    if before:
        console.print(
            f"[yellow]archived days before the first daily partition ({s.orchestration.start_date}), left out: "
            f"{', '.join(map(str, before))} (late events of the generator); ORCHESTRATION__START_DATE moves it"
        )
        archived = [d for d in archived if d >= s.orchestration.start_date]
    if stream.success and archived:
        daily = materialize_days(s, archived[0], archived[-1])
        _print_run(f"demo: the daily graph for {archived[0]}..{archived[-1]} (Dagster job daily_batch)", daily)
        if not daily.success:
            raise PlatformError(f"the daily graph failed: {daily.error}", f"see run {daily.run_id} in the Dagster UI")
        tiering = materialize_days(s, archived[-1], archived[-1], "daily_tiering")
        _print_run(f"demo: tiering as of {archived[-1]} (Dagster job daily_tiering)", tiering)
    elif not stream.success:
        raise PlatformError(f"the stream job failed: {stream.error}", f"see run {stream.run_id} in the Dagster UI")
    console.print(
        "\nnext:\n"
        '  [bold]lambda-features sql "SELECT * FROM features.hot_items_5m ORDER BY window_start, rank LIMIT 10"[/bold]'
        " (the serving view: batch rows for reconciled days, stream rows otherwise)\n"
        f"  [bold]lambda-features ui[/bold] (the runs, assets and checks on http://127.0.0.1:{s.orchestration.ui_port})"
    )
    if not s.clickhouse.url:
        console.print(
            f"the local ClickHouse service keeps running on 127.0.0.1:{s.clickhouse.local_port} for that; "
            "[bold]lambda-features services stop[/bold] stops it"
        )


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


@app.command()
def ui(port: Annotated[int | None, typer.Option(help="default: ORCHESTRATION__UI_PORT")] = None) -> None:
    """The Dagster UI with its daemon (schedules, the stream supervisor) on 127.0.0.1."""
    import os
    import signal
    import subprocess
    import threading

    from orchestration.instance import ensure_dagster_home

    s = _settings()
    ensure_dagster_home(s)
    dagster = str(Path(sys.executable).parent / "dagster")
    args = [
        dagster,
        "dev",
        "-m",
        "orchestration.definitions",
        "-h",
        "127.0.0.1",
        "-p",
        str(port or s.orchestration.ui_port),
    ]
    # its own process group, so that stopping it reaches the webserver, daemon and code server
    proc = subprocess.Popen(args, env=os.environ | {"DAGSTER_HOME": str(s.dagster_home)}, start_new_session=True)
    console.print(f"Dagster UI on http://127.0.0.1:{port or s.orchestration.ui_port} (Ctrl-C or SIGTERM stops it)")
    console.print(f"dagster dev: process group {proc.pid}")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while proc.poll() is None and not stop.wait(1):
        pass
    asked = proc.poll() is None
    _stop_group(proc)  # also when dagster dev ended by itself: nothing of its group may outlive it
    raise typer.Exit(0 if asked else proc.returncode)


UI_STOP_GRACE_S = 30


def _stop_group(proc) -> None:
    """Stop dagster dev as Ctrl-C does (SIGINT: it shuts its processes down cleanly); when
    it has not ended after UI_STOP_GRACE_S, SIGTERM then SIGKILL its whole process group."""
    import os
    import signal
    import subprocess

    def signal_group(sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    if proc.poll() is None:
        signal_group(signal.SIGINT)
        try:
            proc.wait(UI_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            console.print(f"[yellow]dagster dev did not stop within {UI_STOP_GRACE_S}s of SIGINT: terminating it")
            signal_group(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                signal_group(signal.SIGKILL)
                proc.wait()
    signal_group(signal.SIGKILL)  # stragglers of the group (a code server whose parent died)


@app.command()
def generate(
    count: Annotated[int, typer.Option(help="number of events")] = 100_000,
    out: Annotated[Path | None, typer.Option(help="JSON lines file to write")] = None,
    kafka: Annotated[bool, typer.Option(help="produce to the events topic instead")] = False,
    rate: Annotated[float, typer.Option(help="events/s to emit (0: as fast as possible)")] = 0.0,
    seed: int = 42,
    late: float = 0.005,
    out_of_order: float = 0.05,
    live: Annotated[bool, typer.Option(help="event times are the wall clock")] = False,
) -> None:
    """Write seeded synthetic events to a file or a Kafka topic."""
    from features.adapters import to_json
    from features.generator import GeneratorConfig
    from features.generator import generate as gen

    s = _settings()
    if not out and not kafka:
        raise PlatformError("say where to write", "pass --out FILE or --kafka")
    cfg = GeneratorConfig(seed=seed, late=late, out_of_order=out_of_order)
    started = time.monotonic()
    if kafka:
        from common.kafka import ensure_topics, producer

        ensure_topics(s, [s.kafka.events_topic], s.kafka.partitions)
        prod = producer(s)
        for i, e in enumerate(gen(cfg, count, live=live), start=1):
            prod.produce(s.kafka.events_topic, to_json(e), key=str(e["user_id"]).encode())
            if i % 10_000 == 0:
                prod.poll(0)
            if rate:
                ahead = i / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        prod.flush(60)
        where = f"topic {s.kafka.events_topic}"
    else:
        assert out is not None
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as fh:
            for e in gen(cfg, count, live=live):
                fh.write(to_json(e) + b"\n")
        where = str(out)
    took = time.monotonic() - started
    console.print(f"wrote {count:,} events to {where} in {took:.1f}s ({count / took:,.0f}/s)")


@app.command()
def sql(
    query: str,
    fmt: Annotated[str, typer.Option("--format", help="pretty | csv | tsv")] = "pretty",
) -> None:
    """Print a query's result from the platform's ClickHouse (server or embedded chDB)."""
    import csv

    from common.clickhouse import create_tables, get_client

    s = _settings()
    if fmt not in ("pretty", "csv", "tsv"):
        raise PlatformError(f"unknown --format {fmt!r}", "use pretty, csv or tsv")
    create_tables(s)
    try:
        result = get_client(s).query(query)
    except Exception as e:
        raise PlatformError(f"query failed: {str(e).splitlines()[0]}") from None
    if fmt == "pretty":
        t = Table()
        for name in result.column_names:
            t.add_column(name)
        for row in result.result_rows:
            t.add_row(*("NULL" if v is None else str(v) for v in row))
        console.print(t)
    else:
        w = csv.writer(sys.stdout, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        w.writerow(result.column_names)
        w.writerows(result.result_rows)


def _kafka_source(s: Settings, start: str | None, stop_offsets: str | None):
    from common.kafka import bootstrap
    from streaming.job import KafkaSource

    stops = None
    if stop_offsets:
        try:
            stops = {int(p): int(o) for p, o in (x.split(":") for x in stop_offsets.split(","))}
        except ValueError:
            raise PlatformError(f"--stop-offsets {stop_offsets!r} is not PARTITION:OFFSET,...") from None
    return KafkaSource(
        topic=s.kafka.events_topic,
        bootstrap=bootstrap(s),
        group_id=s.kafka.group_id,
        start=start or s.kafka.start,
        start_timestamp_ms=s.kafka.start_timestamp_ms,
        stop_offsets=stops,
    )


RestoreFrom = Annotated[str | None, typer.Option(help="a checkpoint or savepoint to resume from")]


@stream_app.command("run")
def stream_run(
    start: Annotated[str | None, typer.Option(help="group-offsets | earliest | latest | timestamp")] = None,
    stop_offsets: Annotated[str | None, typer.Option(help="bounded: stop before PARTITION:OFFSET,...")] = None,
    fresh: Annotated[bool, typer.Option(help="ignore earlier checkpoints")] = False,
    restore_from: RestoreFrom = None,
) -> None:
    """Run the stream job on the Kafka events topic, with its loader, until interrupted;
    it resumes from the pipeline's latest checkpoint. Its Flink REST API is on
    127.0.0.1:STREAM__REST_PORT."""
    import signal

    from common.kafka import ensure_topics
    from common.services import local_services
    from streaming.deployment import STREAM_PIPELINE
    from streaming.runner import run_job

    s = _settings()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    for svc in local_services(s):
        svc.start()
    ensure_topics(s, [s.kafka.events_topic], s.kafka.partitions)
    summary = run_job(
        s,
        _kafka_source(s, start, stop_offsets),
        keep_services=True,
        pipeline=STREAM_PIPELINE,
        restore=restore_from or not fresh,
        rest_port=s.stream.rest_port,
    )
    _print_summary(summary, "stream")


@stream_app.command("submit")
def stream_submit(
    jobmanager: Annotated[str | None, typer.Option(help="REST address host:port of the Flink cluster")] = None,
    start: Annotated[str | None, typer.Option(help="group-offsets | earliest | latest | timestamp")] = None,
    restore_from: RestoreFrom = None,
) -> None:
    """Submit the stream job to a Flink cluster and return; run `stream load` beside it to
    fill Redis and ClickHouse from its changelog topics."""
    from common.clickhouse import create_tables
    from common.kafka import ensure_topics
    from common.services import local_services
    from streaming.deployment import STREAM_PIPELINE
    from streaming.flink_env import create_table_env
    from streaming.job import build_statements
    from streaming.runner import feature_topics

    s = _settings()
    if jobmanager:
        s = s.model_copy(update={"stream": s.stream.model_copy(update={"jobmanager": jobmanager})})
    if not s.stream.jobmanager:
        raise PlatformError(
            "no Flink cluster given", "pass --jobmanager HOST:PORT or set LAMBDA_FEATURES_STREAM__JOBMANAGER"
        )
    for svc in local_services(s):
        svc.start()
    ensure_topics(s, [s.kafka.events_topic], s.kafka.partitions)
    ensure_topics(s, feature_topics(s), s.kafka.partitions)
    create_tables(s)
    t_env = create_table_env(s, with_kafka=True, pipeline_name=STREAM_PIPELINE, restore_path=restore_from)
    try:
        result = build_statements(t_env, _kafka_source(s, start, None), s, "kafka").execute()
        job_id = result.get_job_client().get_job_id()
    except Exception as e:
        raise PlatformError(
            f"cannot submit to the Flink cluster at {s.stream.jobmanager}: {str(e).splitlines()[0][:300]}",
            "check that its REST endpoint answers (curl http://HOST:PORT/overview)",
        ) from None
    console.print(f"submitted {STREAM_PIPELINE} to {s.stream.jobmanager}: job {job_id}")


@stream_app.command("deploy")
def stream_deploy() -> None:
    """Make the current feature definitions run: start the job, restart it from its latest
    checkpoint, or redeploy it through a savepoint when the definitions changed."""
    from streaming.deployment import StreamDeployment

    result = StreamDeployment(_settings()).deploy()
    console.print(f"stream job {result.action}: {result.status.state}, job {result.status.job_id}")
    if result.savepoint:
        console.print(f"through savepoint {result.savepoint}")


@stream_app.command("status")
def stream_status() -> None:
    """How the deployed stream job is: state, last checkpoint, records, backpressure, Kafka lag."""
    from streaming.deployment import StreamDeployment

    st = StreamDeployment(_settings()).status()
    t = Table(title="stream job", show_header=False)
    for k, v in st.as_dict().items():
        if v not in (None, {}):
            t.add_row(k, str(v))
    console.print(t)


@stream_app.command("stop")
def stream_stop(
    savepoint: Annotated[bool, typer.Option(help="take a savepoint before stopping")] = True,
) -> None:
    """Stop the deployed stream job."""
    from streaming.deployment import StreamDeployment

    location = StreamDeployment(_settings()).stop(savepoint=savepoint)
    console.print(f"stopped{f'; savepoint {location}' if location else ''}")


@stream_app.command("load")
def stream_load(
    only: Annotated[str | None, typer.Option(help="run one loader: online (Redis) or olap (ClickHouse)")] = None,
) -> None:
    """Run the feature loaders alone (Kafka changelog topics -> Redis, and -> ClickHouse), each
    in its own process, until interrupted."""
    from common.clickhouse import create_tables
    from common.kafka import ensure_topics
    from streaming.loader_process import ROLES, serve
    from streaming.runner import feature_topics

    s = _settings()
    if only and only not in ROLES:
        raise PlatformError(f"unknown loader --only {only!r}", f"use one of: {', '.join(ROLES)}")
    ensure_topics(s, feature_topics(s), s.kafka.partitions)
    create_tables(s)
    serve(s, [only] if only else ROLES)


@batch_app.command("reconcile")
def batch_reconcile(date: Annotated[str, typer.Option(help="the UTC day, YYYY-MM-DD")]) -> None:
    """Recompute every streaming feature for a day from the archive into the lake."""
    from batch.reconcile import reconcile

    s = _settings()
    day = _date(date, "--date")
    result = reconcile(s, day)
    t = Table(title=f"reconciled {day}")
    t.add_column("feature")
    t.add_column("rows", justify="right")
    t.add_column("lake")
    for name, n in result.rows.items():
        t.add_row(name, f"{n:,}", result.lake[name])
    console.print(t)
    if result.missing_days:
        console.print(
            f"[yellow]no archive for {', '.join(result.missing_days)}: per-user state counts only the days present"
        )


@batch_app.command("features-30d")
def batch_features_30d(
    date: Annotated[str, typer.Option(help="the as-of UTC day, YYYY-MM-DD")],
    publish: Annotated[
        bool, typer.Option(help="write the online store too; --no-publish leaves it to `batch publish`")
    ] = True,
    rescan: Annotated[
        bool, typer.Option(help="recompute from the raw events of all 30 days, not the daily partials (a check)")
    ] = False,
) -> None:
    """The 30-day features as of a day: lake and ClickHouse, then the online store."""
    from batch.features_30d import run

    s = _settings()
    day = _date(date, "--date")
    result = run(s, day, publish=publish, rescan=rescan)
    for name, n in result.rows.items():
        console.print(f"{name} as of {day}: {n:,} rows -> {result.lake[name]} and features.{name}")
    if result.partials_computed:
        console.print(f"daily partials computed for {len(result.partials_computed)} day(s)")
    if result.users_published is None:
        console.print(f"not published: run `lambda-features batch publish --date {day}` to publish")
    else:
        console.print(f"published to the online store for {result.users_published:,} users")


@batch_app.command("publish")
def batch_publish(date: Annotated[str, typer.Option(help="the as-of UTC day, YYYY-MM-DD")]) -> None:
    """Publish the 30-day features as of a day from the lake to the online store."""
    from batch.publish import publish_online

    s = _settings()
    day = _date(date, "--date")
    console.print(f"published the 30-day features as of {day} for {publish_online(s, day):,} users")


def _date(value: str, option: str):

    try:
        return Date.fromisoformat(value)
    except ValueError:
        raise PlatformError(f"{option} {value!r} is not a date", "use YYYY-MM-DD") from None


@batch_app.command("backfill")
def batch_backfill(
    start: Annotated[str, typer.Option(help="first UTC day, YYYY-MM-DD")],
    end: Annotated[str, typer.Option(help="last UTC day, YYYY-MM-DD")],
    publish: Annotated[
        bool, typer.Option(help="write the online store too; --no-publish leaves it to `batch publish`")
    ] = True,
) -> None:
    """Reconcile and compute the 30-day features for every day of a range (re-runnable)."""
    from batch.backfill import backfill

    s = _settings()
    result = backfill(s, _date(start, "--start"), _date(end, "--end"), publish=publish)
    console.print(f"backfilled {len(result.done)} day(s) in {result.seconds:.0f}s")
    if result.skipped:
        console.print(f"[yellow]no archive, skipped: {', '.join(result.skipped)}")
    for day, gaps in result.incomplete.items():
        console.print(f"[yellow]{day} incomplete (marked in features.reconciled_days): {gaps}")


@services_app.command("start")
def services_start() -> None:
    """Start the local Redis, Kafka broker and ClickHouse service (when not configured to external ones)."""
    from common.services import local_services

    for svc in local_services(_settings()):
        started = svc.start()
        console.print(
            f"{svc.name}: {'started' if started else 'already running'} on 127.0.0.1:{svc.port} (pid {svc.pid()})"
        )


@services_app.command("stop")
def services_stop() -> None:
    """Stop the local services this platform started."""
    from common.services import local_services

    for svc in local_services(_settings()):
        svc.stop()
        console.print(f"{svc.name}: stopped")


@app.command()
def dq(
    date: Annotated[str, typer.Option(help="the UTC day, YYYY-MM-DD")],
    save: Annotated[bool, typer.Option("--record/--no-record", help="store the results in features.dq_results")] = True,
) -> None:
    """Run the data-quality checks for a day; exits 1 when a check of severity ERROR fails."""
    from datetime import UTC, datetime

    from common.services import local_services
    from dq_checks import record, run_checks

    s = _settings()
    day = _date(date, "--date")
    if day > datetime.now(UTC).date():
        raise PlatformError(f"--date {day} is in the future", "pick today or a past day")
    # freshness of today reads the online store: start the embedded Redis if it is not running
    today = day == datetime.now(UTC).date()
    started = [svc for svc in local_services(s) if today and svc.name == "redis" and svc.start()]
    try:
        results = run_checks(s, day)
    finally:
        for svc in started:
            svc.stop()
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


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:,.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:,.1f} KiB"


@tier_app.command("run")
def tier_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what is due, with sizes; move nothing")] = False,
    today: Annotated[str | None, typer.Option(help="the day to count from, YYYY-MM-DD (default: UTC today)")] = None,
    include_restored: Annotated[bool, typer.Option(help="also move days brought back by `tier restore`")] = False,
) -> None:
    """Move every feature day older than tiering.hot_days to the cold tier."""
    import tiering

    s = _settings()
    report = tiering.run(s, _date(today, "--today") if today else None, dry_run, include_restored)
    t = Table(title=f"{'due' if dry_run else 'moved'}: days before {report.cutoff} (today {report.today})")
    t.add_column("table")
    t.add_column("day")
    t.add_column("rows", justify="right")
    t.add_column("hot size" if dry_run else "Parquet", justify="right")
    if not dry_run:
        t.add_column("objects", justify="right")
        t.add_column("uri")
    for p in report.planned if dry_run else []:
        t.add_row(p.table, str(p.day), f"{p.rows:,}", _size(p.bytes))
    for m in report.moves:
        t.add_row(m.table, str(m.day), f"{m.rows:,}", _size(m.bytes), str(m.objects), m.uri)
    console.print(t)
    if dry_run:
        console.print(f"{len(report.planned)} day(s), {_size(sum(p.bytes for p in report.planned))} in ClickHouse")
    else:
        console.print(
            f"moved {len(report.moves)} day(s): {report.rows:,} rows, {report.objects} objects, {_size(report.bytes)}"
        )
    for p in report.skipped:
        console.print(f"[yellow]{p.table} {p.day} changed during its move; it stays hot until the next run")


@tier_app.command("restore")
def tier_restore(
    table: Annotated[str, typer.Option(help="the table, e.g. uv_1m_stream")],
    date: Annotated[str, typer.Option(help="the UTC day, YYYY-MM-DD")],
) -> None:
    """Bring a cold day back into ClickHouse; it stays hot until `tier run --include-restored`."""
    import tiering

    s = _settings()
    day = _date(date, "--date")
    rows = tiering.restore(s, table, day)
    console.print(f"restored {table} {day}: {rows:,} rows back in ClickHouse")


@tier_app.command("verify")
def tier_verify() -> None:
    """Check every cold day: rows hot + cold equal the rows recorded before its move."""
    import tiering

    checks = tiering.verify(_settings())
    bad = [c for c in checks if not c.ok]
    for c in bad:
        console.print(f"[red]{c.table} {c.day}: recorded {c.recorded}, hot {c.hot}, cold {c.cold} {c.error}")
    console.print(f"{len(checks) - len(bad)} of {len(checks)} cold day(s) complete")
    if bad:
        raise typer.Exit(1)


@tier_app.command("status")
def tier_status() -> None:
    """The tiering manifest: every day moved (cold), being moved, or restored."""
    import tiering

    t = Table()
    for col in ("table", "day", "state", "rows", "bytes", "objects", "uri"):
        t.add_column(col)
    for e in tiering.status(_settings()):
        t.add_row(e.table, str(e.day), e.state, f"{e.rows:,}", _size(e.bytes), str(len(e.objects)), e.uri)
    console.print(t)


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
