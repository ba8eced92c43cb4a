"""Run the stream job with its sinks: start local services, the loader, the Flink job,
and report what landed where."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from common.clickhouse import get_client, local_url
from common.errors import PlatformError
from common.kafka import ensure_topics
from common.redis_store import get_redis
from common.services import local_services
from common.settings import Settings
from features.definitions import STREAM_FEATURES
from streaming.checkpoints import latest_checkpoint
from streaming.flink_env import create_table_env, kafka_connector_jars
from streaming.job import FileSource, Source, build_statements, compiled_queries
from streaming.loader import FeatureLoader, send_end_markers
from streaming.staging import StageResult
from warehouse.schema import create_tables
from warehouse.tables import stream_table

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    events_in: int = 0
    parse_dead_letters: int = 0
    stream_dead_letters: int = 0
    archived: int = 0
    late: int = 0
    seconds: float = 0.0
    table_rows: dict[str, int] = field(default_factory=dict)
    redis_keys: int = 0
    loader_messages: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    locations: dict[str, str] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events_in / self.seconds if self.seconds else 0.0


def feature_topics(settings: Settings) -> list[str]:
    return [settings.kafka.features_topic_prefix + q.output for _, q in compiled_queries()]


def count_json_lines(folder: Path, flag: str | None = None) -> tuple[int, int]:
    """(lines, lines where `flag` is true) over the committed part files under folder."""
    import orjson

    total = flagged = 0
    if not folder.exists():
        return 0, 0
    for p in folder.rglob("part-*"):
        if p.name.startswith("."):
            continue
        with p.open("rb") as fh:
            for line in fh:
                total += 1
                if flag and orjson.loads(line).get(flag):
                    flagged += 1
    return total, flagged


def _progress(loader: FeatureLoader, stop: threading.Event, started: float) -> None:
    last = 0
    while not stop.wait(5):
        n = loader.stats.messages
        log.info(
            "loader: %d feature changes consumed (%.0f/s), %d Redis writes, %d ClickHouse rows, %.0fs",
            n,
            (n - last) / 5,
            loader.stats.redis_writes,
            sum(loader.stats.rows.values()),
            time.monotonic() - started,
        )
        last = n


def run_job(
    settings: Settings,
    source: Source,
    stage: StageResult | None = None,
    keep_services: bool = False,
    pipeline: str | None = None,
    restore: bool | str = False,
    measure_latency: bool = False,
    rest_port: int = 0,
) -> RunSummary:
    """Run the whole job with its loader. A bounded source returns once every sink has it
    all; an unbounded one runs until interrupted (Ctrl-C, SIGTERM) or stopped with a savepoint,
    and then stops cleanly. `restore` is True (the pipeline's latest checkpoint) or a path."""
    run_id = uuid.uuid4().hex[:12]
    pipeline = pipeline or f"lambda-features-{run_id}"
    summary = RunSummary(events_in=stage.events if stage else 0, parse_dead_letters=stage.dead_letters if stage else 0)
    bounded = isinstance(source, FileSource) or source.stop_offsets is not None
    with ExitStack() as stack:
        for svc in local_services(settings, monitoring=False):  # a long-running `stream run` starts those
            if svc.start() and not keep_services and not svc.shared:
                stack.callback(svc.stop)
        # Preflight: every store reachable and the connector present, before Flink starts.
        kafka_connector_jars(settings)
        get_redis(settings)
        topics = feature_topics(settings)
        ensure_topics(settings, topics, settings.kafka.partitions)
        create_tables(settings)
        queries = [q for _, q in compiled_queries()]
        loader = FeatureLoader(settings, queries, run_id=run_id if bounded else None, measure_latency=measure_latency)
        thread = threading.Thread(target=loader.run, name="feature-loader", daemon=True)
        thread.start()
        started = time.monotonic()
        stop_progress = threading.Event()
        stack.callback(stop_progress.set)
        threading.Thread(target=_progress, args=(loader, stop_progress, started), daemon=True).start()
        restore_path = (
            restore if isinstance(restore, str) else (latest_checkpoint(settings, pipeline) if restore else None)
        )
        if restore_path:
            log.info("restoring %s from %s", pipeline, restore_path)
        t_env = create_table_env(
            settings, with_kafka=True, pipeline_name=pipeline, restore_path=restore_path, rest_port=rest_port
        )
        stmts = build_statements(t_env, source, settings, "kafka")
        result = stmts.execute()
        log.info("stream job %s (%s) submitted", pipeline, result.get_job_client().get_job_id())

        def stopped() -> RunSummary:
            loader.stop_event.set()
            thread.join()
            summary.seconds = time.monotonic() - started
            summary.loader_messages = loader.stats.messages
            summary.latencies_ms = loader.stats.latencies_ms
            return summary

        try:
            result.wait()
            if not bounded:  # an unbounded job ends only when stopped with a savepoint
                log.info("the Flink job was stopped with a savepoint; stopping the loader")
                return stopped()
        except KeyboardInterrupt:
            log.info("stopping: cancelling the Flink job; it resumes from its last checkpoint")
            result.get_job_client().cancel().result()
            return stopped()
        except Exception as e:
            loader.stop_event.set()
            raise PlatformError(
                f"the stream job failed: {str(e).splitlines()[0][:500]}",
                f"see the Flink log under {settings.home / 'logs'}",
            ) from None
        send_end_markers(settings, topics, run_id)
        thread.join()
        if loader.error:
            raise PlatformError(f"the feature loader failed: {loader.error}")
        summary.seconds = time.monotonic() - started
        summary.loader_messages = loader.stats.messages
        summary.archived, summary.late = count_json_lines(settings.archive_dir, "late")
        summary.stream_dead_letters, _ = count_json_lines(settings.dead_letter_dir / "stream")
        if not stage:
            summary.events_in = summary.archived + summary.stream_dead_letters
        ch = get_client(settings)
        db = settings.clickhouse.database
        for f in STREAM_FEATURES:
            table = stream_table(f)
            summary.table_rows[f"{db}.{table}"] = ch.query(f"SELECT count() FROM {db}.{table} FINAL").result_rows[0][0]
        summary.redis_keys = sum(1 for _ in get_redis(settings).scan_iter(f"{settings.redis.key_prefix}*", count=1000))
        summary.locations = {
            "archive": str(settings.archive_dir),
            "dead letters": str(settings.dead_letter_dir),
            "ClickHouse": settings.clickhouse.url or f"{local_url(settings)} (chDB at {settings.clickhouse_dir})",
            "checkpoints": settings.checkpoint_uri,
        }
    return summary
