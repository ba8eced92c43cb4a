"""Run the stream job with its sinks: start local services, the two loader processes, the
Flink job, and report what landed where."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from common.clickhouse import get_client, local_url
from common.errors import PlatformError
from common.kafka import ensure_topics
from common.redis_store import get_redis
from common.repository import load_features
from common.services import local_services
from common.settings import Settings
from streaming.checkpoints import latest_checkpoint
from streaming.compiled_plan import execute_job
from streaming.flink_env import create_table_env, kafka_job_jars
from streaming.job import Source, build_statements, compiled_queries
from streaming.loader import LoaderStats, send_end_markers
from streaming.loader_process import Loaders
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
    online: LoaderStats = field(default_factory=LoaderStats)  # what the online loader did
    olap: LoaderStats = field(default_factory=LoaderStats)  # and the OLAP loader
    locations: dict[str, str] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events_in / self.seconds if self.seconds else 0.0


def feature_topics(settings: Settings) -> list[str]:
    return [settings.kafka.features_topic_prefix + q.output for _, q in compiled_queries(settings)]


def ensure_feature_topics(settings: Settings) -> None:
    """The feature changelog topics; the updating features' (keyed upserts, which the online
    store is rebuilt from) compacted, so a broker keeps each key's last value for good."""
    compacted = {
        settings.kafka.features_topic_prefix + q.output: {"cleanup.policy": "compact"}
        for _, q in compiled_queries(settings)
        if q.updating
    }
    ensure_topics(settings, feature_topics(settings), settings.kafka.partitions, compacted)


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


def _supervise(loaders: Loaders, stop: threading.Event, started: float, on_failure) -> None:
    """Restart loaders that die; log progress every 5 s; on_failure(error) when one keeps failing."""
    last = started
    while not stop.wait(0.5):
        try:
            loaders.check()
        except PlatformError as e:
            on_failure(e)
            return
        except Exception as e:  # supervising must not end silently
            on_failure(PlatformError(f"supervising the feature loaders failed: {e!r}"))
            return
        if time.monotonic() - last >= 5:
            last = time.monotonic()
            log.info("%s, %.0fs", loaders.progress(), last - started)


def run_job(
    settings: Settings,
    source: Source,
    stage: StageResult | None = None,
    keep_services: bool = False,
    pipeline: str | None = None,
    restore: bool | str = False,
    measure_latency: bool = False,
    rest_port: int = 0,
    on_store_lost: Callable[[], None] | None = None,
) -> RunSummary:
    """Run the whole job with its two loaders. A bounded source returns once every sink has it
    all; an unbounded one runs until interrupted (Ctrl-C, SIGTERM) or stopped with a savepoint,
    and then stops cleanly. `restore` is True (the pipeline's latest checkpoint) or a path;
    on_store_lost: see Loaders."""
    run_id = uuid.uuid4().hex[:12]
    pipeline = pipeline or f"lambda-features-{run_id}"
    summary = RunSummary(events_in=stage.events if stage else 0, parse_dead_letters=stage.dead_letters if stage else 0)
    bounded = source.bounded
    kafka_job_jars(settings)  # present, before any service or Flink starts
    with ExitStack() as stack:
        for svc in local_services(settings, monitoring=False):  # a long-running `stream run` starts those
            if svc.start() and not keep_services and not svc.shared:
                stack.callback(svc.stop)
        # Preflight: every store reachable, before Flink starts.
        get_redis(settings)
        topics = feature_topics(settings)
        ensure_feature_topics(settings)
        create_tables(settings)
        loaders = Loaders(
            settings, run_id=run_id if bounded else None, measure_latency=measure_latency, on_store_lost=on_store_lost
        )
        loaders.start()
        stack.callback(loaders.stop)
        started = time.monotonic()
        stop_supervising = threading.Event()
        stack.callback(stop_supervising.set)
        failed: list[PlatformError] = []
        job: list = []  # the Flink job's client, once submitted

        def loader_failed(e: PlatformError) -> None:
            failed.append(e)
            if job:  # ends result.wait() below
                job[0].cancel()

        supervisor = threading.Thread(
            target=_supervise, args=(loaders, stop_supervising, started, loader_failed), daemon=True
        )
        supervisor.start()
        restore_path = (
            restore if isinstance(restore, str) else (latest_checkpoint(settings, pipeline) if restore else None)
        )
        if restore_path:
            log.info("restoring %s from %s", pipeline, restore_path)
        t_env = create_table_env(
            settings, with_kafka=True, pipeline_name=pipeline, restore_path=restore_path, rest_port=rest_port
        )
        stmts = build_statements(t_env, source, settings, "kafka")
        # a long-running job's plan is kept: the next deployment aligns its operator uids with it
        saved = None if bounded else settings.run_dir / f"{pipeline}.plan.json"
        result = execute_job(t_env, stmts, saved)
        job.append(result.get_job_client())
        log.info("stream job %s (%s) submitted", pipeline, job[0].get_job_id())

        def end_loaders(wait: bool) -> None:
            """Stop supervising; then let the loaders end their bounded run, or stop them."""
            stop_supervising.set()
            supervisor.join()
            if wait:
                loaders.wait()
            else:
                loaders.stop()
            summary.seconds = time.monotonic() - started
            summary.online, summary.olap = loaders.stats("online"), loaders.stats("olap")

        try:
            result.wait()
            if failed:
                raise failed[0]
            if not bounded:  # an unbounded job ends only when stopped with a savepoint
                log.info("the Flink job was stopped with a savepoint; stopping the loaders")
                end_loaders(wait=False)
                return summary
        except KeyboardInterrupt:
            log.info("stopping: cancelling the Flink job; it resumes from its last checkpoint")
            job[0].cancel().result()
            end_loaders(wait=False)
            return summary
        except PlatformError:
            raise
        except Exception as e:
            if failed:
                raise failed[0] from None
            raise PlatformError(
                f"the stream job failed: {str(e).splitlines()[0][:500]}",
                f"see the Flink log under {settings.home / 'logs'}",
            ) from None
        send_end_markers(settings, topics, run_id)
        end_loaders(wait=True)
        summary.archived, summary.late = count_json_lines(settings.archive_dir, "late")
        summary.stream_dead_letters, _ = count_json_lines(settings.dead_letter_dir / "stream")
        if not stage:
            summary.events_in = summary.archived + summary.stream_dead_letters
        ch = get_client(settings)
        db = settings.clickhouse.database
        for f in load_features(settings).stream:
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
