"""The stream job: one source, the acceptance rules, every feature, every sink."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from common.archive import DAY_KEY, HOUR_KEY
from common.kafka import bootstrap
from common.settings import Settings
from features.definitions import STREAM_FEATURES
from features.events import (
    ARRIVAL_COLUMN,
    EVENT_COLUMNS,
    SOURCE_COLUMNS,
    rejection_sql,
    text_rejection_sql,
    type_error_sql,
    typed_sql,
)
from streaming.sql import FlinkQuery, compile_feature
from streaming.staging import NULL

EVENT_DDL = ", ".join(f"`{c.name}` {c.flink}" for c in (*SOURCE_COLUMNS, *EVENT_COLUMNS))
EVENT_NAMES = ", ".join(f"`{c.name}`" for c in (*EVENT_COLUMNS, *SOURCE_COLUMNS))
# Processing time in epoch ms. In streaming mode CURRENT_TIMESTAMP is evaluated once per
# record, so both halves read the same instant (Flink has no direct millisecond cast).
RECORDS_TABLE = "kafka_records"  # the events topic read again as bytes, for records the json format cannot read
RAW_CHARS = 1000  # of an unreadable record, kept in its dead letter
ARRIVED_AT_MS = (
    "CAST(TIMESTAMPDIFF(SECOND, TO_TIMESTAMP_LTZ(0, 3), CURRENT_TIMESTAMP) AS BIGINT) * 1000 "
    "+ EXTRACT(MILLISECOND FROM CURRENT_TIMESTAMP)"
)


@dataclass(frozen=True)
class FileSource:
    """A staged CSV (streaming/staging.py): a bounded replay."""

    path: Path


@dataclass(frozen=True)
class KafkaSource:
    """Canonical JSON events on a Kafka topic; bounded when stop_offsets is given."""

    topic: str
    bootstrap: str
    group_id: str
    start: str = "group-offsets"
    start_timestamp_ms: int | None = None
    stop_offsets: dict[int, int] | None = None  # partition -> offset to stop before


Source = FileSource | KafkaSource
SinkMode = Literal["kafka", "blackhole"]


def time_bounds(settings: Settings, now: datetime | None = None) -> tuple[int, int]:
    """Accepted event times in epoch ms: [min_event_time, job start + max_future_hours]."""
    now = now or datetime.now(UTC)
    lo = int(settings.stream.min_event_time.timestamp() * 1000)
    hi = int(now.timestamp() * 1000 + settings.stream.max_future_hours * 3_600_000)
    return lo, hi


def _kafka_options(source: KafkaSource, settings: Settings, group_id: str) -> dict[str, str]:
    """The Kafka connector's options of a table over the events topic (its format aside)."""
    start = {
        "group-offsets": "group-offsets",
        "earliest": "earliest-offset",
        "latest": "latest-offset",
        "timestamp": "timestamp",
    }[source.start]
    opts = {
        "connector": "kafka",
        "topic": source.topic,
        "properties.bootstrap.servers": source.bootstrap,
        "properties.group.id": group_id,
        "properties.auto.offset.reset": "earliest",
        "properties.session.timeout.ms": "6000",
        "properties.fetch.max.wait.ms": str(settings.kafka.events_fetch_max_wait_ms),
        "properties.fetch.min.bytes": str(settings.kafka.events_fetch_min_bytes),
        "scan.startup.mode": start,
    }
    if source.start == "timestamp":
        opts["scan.startup.timestamp-millis"] = str(source.start_timestamp_ms or 0)
    if source.stop_offsets is not None:
        opts["scan.bounded.mode"] = "specific-offsets"
        opts["scan.bounded.specific-offsets"] = ";".join(
            f"partition:{p},offset:{o}" for p, o in sorted(source.stop_offsets.items())
        )
    return opts


def _with(opts: dict[str, str]) -> str:
    return ", ".join(f"'{k}' = '{v}'" for k, v in opts.items())


_POSITION = "`src_part` INT METADATA FROM 'partition' VIRTUAL, `src_off` BIGINT METADATA FROM 'offset' VIRTUAL"


def source_ddl(source: Source, settings: Settings, bounds: tuple[int, int]) -> str:
    """The source table: `raw_events` (files) or `kafka_events` (every field as text; the view
    `raw_events` types them). A rejected record gets rowtime 0, so it can never move the
    watermark or open a window."""
    wm = f"WATERMARK FOR ts AS ts - INTERVAL '{settings.stream.watermark_delay_ms / 1000:.3f}' SECOND"
    emit = f"'scan.watermark.emit.strategy' = '{settings.stream.watermark_emit}'"
    if isinstance(source, FileSource):
        ts = f"ts AS TO_TIMESTAMP_LTZ(CASE WHEN ({rejection_sql(*bounds)}) IS NULL THEN event_time ELSE 0 END, 3)"
        return (
            f"CREATE TEMPORARY TABLE raw_events ({EVENT_DDL}, {ts}, "
            f"`type_error` AS CAST(NULL AS STRING), {wm}) WITH ("
            f"'connector' = 'filesystem', 'path' = '{source.path.resolve().as_uri()}', 'format' = 'csv', "
            f"'csv.null-literal' = '{NULL}', 'csv.allow-comments' = 'false', "
            f"{emit})"
        )
    text_cols = ", ".join(f"`{c.name}` STRING" for c in EVENT_COLUMNS)
    event_time = typed_sql(next(c for c in EVENT_COLUMNS if c.name == "event_time"))
    ts = f"ts AS TO_TIMESTAMP_LTZ(CASE WHEN ({text_rejection_sql(*bounds)}) IS NULL THEN {event_time} ELSE 0 END, 3)"
    opts = _kafka_options(source, settings, source.group_id) | {
        "format": "json",
        # only bytes that are no JSON object fail here; kafka_records dead-letters them
        "json.ignore-parse-errors": "true",
        "json.fail-on-missing-field": "false",
        "scan.watermark.emit.strategy": settings.stream.watermark_emit,
        "scan.watermark.idle-timeout": f"{settings.stream.source_idle_timeout_s} s",
    }
    return f"CREATE TEMPORARY TABLE kafka_events ({text_cols}, {_POSITION}, {ts}, {wm}) WITH ({_with(opts)})"


def records_ddl(source: KafkaSource, settings: Settings) -> list[str]:
    """The events topic again, as bytes (its own consumer group), and the view of the records
    the json format cannot read, with the reason: no value, not UTF-8, not a JSON object."""
    opts = _kafka_options(source, settings, f"{source.group_id}-records") | {"format": "raw"}
    return [f"CREATE TEMPORARY TABLE {RECORDS_TABLE} (`value` BYTES, {_POSITION}) WITH ({_with(opts)})", UNPARSED_VIEW]


_TEXT = "DECODE(`value`, 'UTF-8')"
# What the json format of kafka_events cannot read (it drops those records): no value, bytes
# that are not UTF-8, text that is not a JSON object.
UNPARSED_VIEW = (
    "CREATE TEMPORARY VIEW unparsed_records AS SELECT src_part, src_off, `value`, "
    "CASE WHEN `value` IS NULL THEN 'empty record' "
    f"WHEN ENCODE({_TEXT}, 'UTF-8') <> `value` THEN 'not UTF-8' "
    f"WHEN NOT ({_TEXT} IS JSON OBJECT) THEN 'malformed JSON' ELSE CAST(NULL AS STRING) END AS reason "
    f"FROM {RECORDS_TABLE}"
)


def typed_view() -> str:
    """`raw_events` over `kafka_events`: each field as its type, and the first wrong type."""
    cols = ", ".join(f"{typed_sql(c)} AS `{c.name}`" for c in EVENT_COLUMNS)
    return (
        f"CREATE TEMPORARY VIEW raw_events AS SELECT src_part, src_off, {cols}, ts, "
        f"{type_error_sql()} AS type_error FROM kafka_events"
    )


def views(bounds: tuple[int, int]) -> list[str]:
    reject = rejection_sql(*bounds)
    return [
        f"CREATE TEMPORARY VIEW checked_events AS SELECT *, COALESCE(type_error, {reject}) AS reason FROM raw_events",
        # late: at or behind the watermark on arrival; windows would drop it.
        f"CREATE TEMPORARY VIEW events AS SELECT {EVENT_NAMES}, ts, "
        "COALESCE(ts <= CURRENT_WATERMARK(ts), FALSE) AS late FROM checked_events WHERE reason IS NULL",
        "CREATE TEMPORARY VIEW events_on_time AS SELECT * FROM events WHERE NOT late",
    ]


def _filesystem_sink(name: str, columns: str, path: Path, rollover_s: int, partition_by: tuple[str, ...] = ()) -> str:
    """JSON lines; a file is committed (made visible) at the first checkpoint after it rolls."""
    part = f"PARTITIONED BY ({', '.join(f'`{k}`' for k in partition_by)}) " if partition_by else ""
    return (
        f"CREATE TEMPORARY TABLE {name} ({columns}) {part}WITH ('connector' = 'filesystem', "
        f"'path' = '{path.resolve().as_uri()}', 'format' = 'json', "
        f"'sink.rolling-policy.rollover-interval' = '{rollover_s} s', "
        f"'sink.rolling-policy.check-interval' = '{max(1, rollover_s // 4)} s', "
        "'sink.partition-commit.policy.kind' = 'success-file')"
    )


def feature_sink_ddl(q: FlinkQuery, mode: SinkMode, settings: Settings) -> str:
    cols = ", ".join(f"`{c.name}` {c.flink}" for c in q.columns)
    if mode == "blackhole":
        return f"CREATE TEMPORARY TABLE sink_{q.output} ({cols}) WITH ('connector' = 'blackhole')"
    common = {
        "topic": settings.kafka.features_topic_prefix + q.output,
        "properties.bootstrap.servers": bootstrap(settings),
        "properties.linger.ms": str(settings.kafka.features_linger_ms),
        "value.format": "json",
        "value.json.timestamp-format.standard": "ISO-8601",
        "value.json.encode.decimal-as-plain-number": "true",
    }
    if q.updating:
        # Upserts keyed by the feature's keys: one partition per key keeps its changes in
        # order; the sink folds the changes of a key over each fold interval (writing the
        # last), and drops the -U half of every update.
        keys = ", ".join(f"`{k}`" for k in q.feature.keys)
        fold_ms = settings.stream.changelog_fold_ms
        opts = common | {
            "connector": "upsert-kafka",
            "key.format": "json",
            "sink.buffer-flush.max-rows": str(settings.stream.changelog_fold_rows if fold_ms else 0),
            "sink.buffer-flush.interval": f"{fold_ms} ms",
        }
        cols += f", PRIMARY KEY ({keys}) NOT ENFORCED"
    else:
        opts = common | {"connector": "kafka", "sink.delivery-guarantee": "at-least-once", "sink.partitioner": "fixed"}
    with_ = ", ".join(f"'{k}' = '{v}'" for k, v in opts.items())
    return f"CREATE TEMPORARY TABLE sink_{q.output} ({cols}) WITH ({with_})"


def compiled_queries() -> list[tuple[str, FlinkQuery]]:
    return [compile_feature(f) for f in STREAM_FEATURES]


def base_sql(source: Source, settings: Settings, bounds: tuple[int, int], archive: bool = True) -> list[str]:
    """The job's statements before any feature, in order: the source, the views, the
    dead-letter sink and (archive=True) the raw-event archive, each sink with its INSERT."""
    stmts = [source_ddl(source, settings, bounds), *views(bounds)]
    dead_cols = f"`reason` STRING, {EVENT_DDL}, `raw` STRING"
    event_cols = ", ".join(f"`{c.name}`" for c in EVENT_COLUMNS)
    dead = (
        f"SELECT reason, src_part, src_off, {event_cols}, CAST(NULL AS STRING) "
        "FROM checked_events WHERE reason IS NOT NULL"
    )
    if isinstance(source, KafkaSource):
        stmts[1:1] = [*records_ddl(source, settings), typed_view()]
        nulls = ", ".join(f"CAST(NULL AS {c.flink})" for c in EVENT_COLUMNS)
        # the record as it came (at most RAW_CHARS characters), to see what was sent
        raw = f"SUBSTRING({_TEXT}, 1, {RAW_CHARS})"
        dead += (
            f" UNION ALL SELECT reason, src_part, src_off, {nulls}, {raw} "
            "FROM unparsed_records WHERE reason IS NOT NULL"
        )
    stmts += [
        _filesystem_sink(
            "dead_letters", dead_cols, settings.dead_letter_dir / "stream", settings.stream.archive_rollover_s
        ),
        f"INSERT INTO dead_letters {dead}",
    ]
    if archive:
        # the layout of common/archive.py: the event time's UTC day and hour
        arrival = f"`{ARRIVAL_COLUMN.name}` {ARRIVAL_COLUMN.flink}"
        arch_cols = f"{EVENT_DDL}, `late` BOOLEAN, {arrival}, `{DAY_KEY}` STRING, `{HOUR_KEY}` STRING"
        stmts += [
            _filesystem_sink(
                "archive", arch_cols, settings.archive_dir, settings.stream.archive_rollover_s, (DAY_KEY, HOUR_KEY)
            ),
            "INSERT INTO archive SELECT src_part, src_off, "
            + ", ".join(f"`{c.name}`" for c in EVENT_COLUMNS)
            + f", late, {ARRIVED_AT_MS}, DATE_FORMAT(ts, 'yyyy-MM-dd'), DATE_FORMAT(ts, 'HH') FROM events",
        ]
    return stmts


def feature_sql(view_ddl: str, q: FlinkQuery, sink_mode: SinkMode, settings: Settings) -> list[str]:
    """One feature's statements, in order: its input view, its sink and its INSERT."""
    return [view_ddl, feature_sink_ddl(q, sink_mode, settings), f"INSERT INTO sink_{q.output} {q.select}"]


def job_sql(
    source: Source,
    settings: Settings,
    sink_mode: SinkMode,
    bounds: tuple[int, int],
    archive: bool = True,
    features: Collection[str] | None = None,
) -> list[str]:
    """Every statement of the job, in order (of only these features, when given)."""
    stmts = base_sql(source, settings, bounds, archive)
    for view_ddl, q in compiled_queries():
        if features is None or q.feature.name in features:
            stmts += feature_sql(view_ddl, q, sink_mode, settings)
    return stmts


def build_statements(
    t_env,
    source: Source,
    settings: Settings,
    sink_mode: SinkMode,
    archive: bool = True,
    features: Collection[str] | None = None,
):
    """Register every table and return the StatementSet of the whole job (of only these
    features, when given: the benchmark's cost per feature)."""
    stmts = t_env.create_statement_set()
    for sql in job_sql(source, settings, sink_mode, time_bounds(settings), archive, features):
        if sql.startswith("INSERT INTO "):
            stmts.add_insert_sql(sql)
        else:
            t_env.execute_sql(sql)
    return stmts
