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


class _SupervisedLoaders:
    """The job's two loader processes, restarted when they die, their progress logged every
    5 s. When one keeps failing, the Flink job (once submitted) is cancelled and the error kept."""

    def __init__(self, loaders: Loaders) -> None:
        self.loaders = loaders
        self.error: PlatformError | None = None
        self.job = None  # the Flink job's client, once submitted
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, daemon=True)

    def start(self) -> None:
        self.loaders.start()
        self.started = time.monotonic()
        self._thread.start()

    def _supervise(self) -> None:
        last = self.started
        while not self._stop.wait(0.5):
            try:
                self.loaders.check()
            except PlatformError as e:
                self._failed(e)
                return
            except Exception as e:  # supervising must not end silently
                self._failed(PlatformError(f"supervising the feature loaders failed: {e!r}"))
                return
            if time.monotonic() - last >= 5:
                last = time.monotonic()
                log.info("%s, %.0fs", self.loaders.progress(), last - self.started)

    def _failed(self, e: PlatformError) -> None:
        self.error = e
        if self.job is not None:  # ends the wait for the job's result
            self.job.cancel()

    def close(self) -> None:
        self._stop.set()
        self.loaders.stop()

    def end(self, summary: RunSummary, wait: bool) -> None:
        """Stop supervising; then let the loaders end their bounded run, or stop them."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if wait:
            self.loaders.wait()
        else:
            self.loaders.stop()
        summary.seconds = time.monotonic() - self.started
        summary.online, summary.olap = self.loaders.stats("online"), self.loaders.stats("olap")


def run_job(
    settings: Settings,
    source: Source,
    stage: StageResult | None = None,
    keep_services: bool = False,
    pipeline: str | None = None,
    restore: bool | str = False,
    measure_latency: float | None = None,
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
    kafka_job_jars(settings)  # present, before any service or Flink starts
    with ExitStack() as stack:
        topics = _prepare_sinks(settings, stack, keep_services)
        loaders = _SupervisedLoaders(
            Loaders(
                settings,
                run_id=run_id if source.bounded else None,
                measure_latency=measure_latency,
                on_store_lost=on_store_lost,
            )
        )
        loaders.start()
        stack.callback(loaders.close)
        result = _submit(settings, source, pipeline, restore, rest_port)
        loaders.job = result.get_job_client()
        if loaders.error:  # a loader failed before the job could be cancelled
            loaders.job.cancel()
        log.info("stream job %s (%s) submitted", pipeline, loaders.job.get_job_id())
        if not _wait_for_the_job(settings, result, loaders, summary, source.bounded):
            return summary
        send_end_markers(settings, topics, run_id)
        loaders.end(summary, wait=True)
        _summarize(settings, summary, stage)
    return summary


def _prepare_sinks(settings: Settings, stack: ExitStack, keep_services: bool) -> list[str]:
    """Start the local services the sinks need (stopped at the end unless kept), check that
    every store answers before Flink starts, and create the topics and tables; the feature topics."""
    for svc in local_services(settings, monitoring=False):  # a long-running `stream run` starts those
        if svc.start() and not keep_services and not svc.shared:
            stack.callback(svc.stop)
    get_redis(settings)
    ensure_feature_topics(settings)
    create_tables(settings)
    return feature_topics(settings)


def _submit(settings: Settings, source: Source, pipeline: str, restore: bool | str, rest_port: int):
    """Submit the job, restored from `restore` (a path, or True: the latest checkpoint)."""
    restore_path = restore if isinstance(restore, str) else (latest_checkpoint(settings, pipeline) if restore else None)
    if restore_path:
        log.info("restoring %s from %s", pipeline, restore_path)
    t_env = create_table_env(
        settings, with_kafka=True, pipeline_name=pipeline, restore_path=restore_path, rest_port=rest_port
    )
    stmts = build_statements(t_env, source, settings, "kafka")
    # a long-running job's plan is kept: the next deployment aligns its operator uids with it
    saved = None if source.bounded else settings.run_dir / f"{pipeline}.plan.json"
    return execute_job(t_env, stmts, saved)


def _wait_for_the_job(
    settings: Settings, result, loaders: _SupervisedLoaders, summary: RunSummary, bounded: bool
) -> bool:
    """Until the job ends. True when a bounded job read its source to the end; False when an
    unbounded one was stopped (with a savepoint, or interrupted: it resumes from its last
    checkpoint), the loaders stopped. Raises when the job or a loader failed."""
    try:
        result.wait()
        if loaders.error:
            raise loaders.error
        if bounded:
            return True
        log.info("the Flink job was stopped with a savepoint; stopping the loaders")
    except KeyboardInterrupt:
        log.info("stopping: cancelling the Flink job; it resumes from its last checkpoint")
        loaders.job.cancel().result()
    except PlatformError:
        raise
    except Exception as e:
        if loaders.error:
            raise loaders.error from None
        raise PlatformError(
            f"the stream job failed: {str(e).splitlines()[0][:500]}",
            f"see the Flink log under {settings.home / 'logs'}",
        ) from None
    loaders.end(summary, wait=False)
    return False


def _summarize(settings: Settings, summary: RunSummary, stage: StageResult | None) -> None:
    """What landed where, once a bounded run ended: the archive, dead letters, tables and keys."""
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
