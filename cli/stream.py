"""`replay` and `stream run|submit|deploy|status|stop|load`: the stream job."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.console import console, settings
from common.errors import PlatformError
from common.repository import load_features

app = typer.Typer(no_args_is_help=True, help="The long-running stream job.")
RestoreFrom = Annotated[str | None, typer.Option(help="a checkpoint or savepoint to resume from")]
Start = Annotated[str | None, typer.Option(help="group-offsets | earliest | latest | timestamp")]


def print_summary(summary, title: str) -> None:
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


def replay(
    paths: Annotated[list[Path], typer.Argument(help="input files, replayed in order")],
    fmt: Annotated[str, typer.Option("--format", help="taobao | rees46 | jsonl")] = "jsonl",
    keep_services: Annotated[bool, typer.Option(help="leave local Redis/Kafka running")] = False,
) -> None:
    """Run the stream job over files as a bounded stream; exits once every window fired."""
    from streaming.job import FileSource
    from streaming.runner import run_job
    from streaming.staging import stage_files

    s = settings()
    staged = s.staging_dir / "runs" / f"replay-{uuid.uuid4().hex[:8]}.csv"
    attributes = load_features(s).event_attributes
    stage = stage_files(fmt, paths, staged, s.dead_letter_dir / "parse", attributes)
    logging.info("staged %d events from %d file(s), %d unparseable", stage.events, len(paths), stage.dead_letters)
    summary = run_job(s, FileSource(stage.path), stage, keep_services=keep_services, on_store_lost=_republisher(s))
    print_summary(summary, "replay")


def _republisher(s):
    """What the loaders' owner does once the online store lost data, besides their own rebuild."""
    from functools import partial

    from orchestration.online_store import republish_batch

    return partial(republish_batch, s)


def _stop_offsets(value: str | None) -> dict[int, int] | None:
    if not value:
        return None
    try:
        return {int(p): int(o) for p, o in (x.split(":") for x in value.split(","))}
    except ValueError:
        raise PlatformError(f"--stop-offsets {value!r} is not PARTITION:OFFSET,...") from None


@app.command("run")
def run(
    start: Start = None,
    stop_offsets: Annotated[str | None, typer.Option(help="bounded: stop before PARTITION:OFFSET,...")] = None,
    fresh: Annotated[bool, typer.Option(help="ignore earlier checkpoints")] = False,
    restore_from: RestoreFrom = None,
) -> None:
    """Run the stream job on the Kafka events topic, with its loader, until interrupted;
    it resumes from the pipeline's latest checkpoint. Its Flink REST API is on
    127.0.0.1:STREAM__REST_PORT."""
    import signal

    from common.kafka import ensure_topics
    from common.metrics import serve_metrics
    from common.services import local_services
    from streaming.deployment import STREAM_PIPELINE
    from streaming.runner import run_job
    from streaming.submit import kafka_source

    s = settings()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    for svc in local_services(s):
        svc.start()
    serve_metrics(s, s.monitoring.stream_port, "the stream job")
    ensure_topics(s, [s.kafka.events_topic], s.kafka.partitions)
    summary = run_job(
        s,
        kafka_source(s, start, _stop_offsets(stop_offsets)),
        keep_services=True,
        pipeline=STREAM_PIPELINE,
        restore=restore_from or not fresh,
        rest_port=s.stream.rest_port,
        on_store_lost=_republisher(s),
    )
    print_summary(summary, "stream")


@app.command("submit")
def submit(
    jobmanager: Annotated[str | None, typer.Option(help="REST address host:port of the Flink cluster")] = None,
    start: Start = None,
    restore_from: RestoreFrom = None,
) -> None:
    """Submit the stream job to a Flink cluster and return; run `stream load` beside it to
    fill Redis and ClickHouse from its changelog topics."""
    from streaming.deployment import STREAM_PIPELINE
    from streaming.submit import submit as submit_job

    s = settings()
    if jobmanager:
        s = s.model_copy(update={"stream": s.stream.model_copy(update={"jobmanager": jobmanager})})
    job_id = submit_job(s, start, restore_from)
    console.print(f"submitted {STREAM_PIPELINE} to {s.stream.jobmanager}: job {job_id}")


@app.command("deploy")
def deploy(
    parallelism: Annotated[int | None, typer.Option(min=1, help="rescale to this many subtasks")] = None,
) -> None:
    """Make the current feature definitions run: start the job, restart it from its latest
    checkpoint, or redeploy it through a savepoint when the definitions (or the parallelism) changed."""
    from streaming.deployment import StreamDeployment

    result = StreamDeployment(settings()).deploy(parallelism=parallelism)
    console.print(f"stream job {result.action}: {result.status.state}, job {result.status.job_id}")
    if result.savepoint:
        console.print(f"through savepoint {result.savepoint}")


@app.command("status")
def status() -> None:
    """How the deployed stream job is: state, last checkpoint, records, backpressure, Kafka lag."""
    from streaming.deployment import StreamDeployment

    st = StreamDeployment(settings()).status()
    t = Table(title="stream job", show_header=False)
    for k, v in st.as_dict().items():
        if v not in (None, {}):
            t.add_row(k, str(v))
    console.print(t)


@app.command("stop")
def stop(
    savepoint: Annotated[bool, typer.Option(help="take a savepoint before stopping")] = True,
) -> None:
    """Stop the deployed stream job."""
    from streaming.deployment import StreamDeployment

    location = StreamDeployment(settings()).stop(savepoint=savepoint)
    console.print(f"stopped{f'; savepoint {location}' if location else ''}")


@app.command("load")
def load(
    only: Annotated[str | None, typer.Option(help="run one loader: online (Redis) or olap (ClickHouse)")] = None,
) -> None:
    """Run the feature loaders alone (Kafka changelog topics -> Redis, and -> ClickHouse), each
    in its own process, until interrupted."""
    from streaming.loader_process import ROLES, serve
    from streaming.runner import ensure_feature_topics
    from warehouse.schema import create_tables

    s = settings()
    if only and only not in ROLES:
        raise PlatformError(f"unknown loader --only {only!r}", f"use one of: {', '.join(ROLES)}")
    ensure_feature_topics(s)
    create_tables(s)
    serve(s, [only] if only else ROLES, on_store_lost=_republisher(s))


@app.command("rebuild-online")
def rebuild_online(
    feature: Annotated[
        list[str] | None, typer.Option(help="only this online feature (repeatable); all when left out")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the stream features' rebuild")] = 600,
) -> None:
    """Rebuild the online store (Redis): the stream features from the start of their changelog
    topics (by the running online loader, or by one started here when none runs), and the
    30-day features by publishing again the newest day published. The online loader does the
    same by itself when Redis lost writes it had made."""
    from orchestration.online_store import rebuild_online as rebuild
    from streaming.runner import ensure_feature_topics

    s = settings()
    ensure_feature_topics(s)
    report = rebuild(s, feature or None, timeout)
    if report.stream:
        console.print(
            f"rebuilt {', '.join(report.stream)} from their changelog topics in {report.seconds:.1f}s "
            f"({report.keys:,} users' keys rewritten), by {report.by}"
        )
    for name, day in report.batch.items():
        console.print(f"republished {name} as of {day}")
    if not report.stream and not report.batch:
        console.print("nothing to rebuild: no 30-day feature was ever published")
