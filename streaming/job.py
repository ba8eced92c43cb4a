"""The stream job: one source, the acceptance rules, every feature, every sink."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson

from common.archive import DAY_KEY, HOUR_KEY
from common.kafka import bootstrap, end_offsets, ensure_topics
from common.repository import load_features
from common.settings import Settings
from features.catalog import ITEM_COLUMNS, ITEM_KEY
from features.events import ARRIVAL_COLUMN, RULES, SOURCE_COLUMNS, Column, rejection_sql, type_errors
from streaming.sql import FlinkQuery, compile_feature
from streaming.staging import NULL


def _ddl(columns: tuple[Column, ...]) -> str:
    return ", ".join(f"`{c.name}` {c.flink}" for c in columns)


def _names(columns: tuple[Column, ...]) -> str:
    return ", ".join(f"`{c.name}`" for c in columns)


def event_columns(settings: Settings) -> tuple[Column, ...]:
    """The event's columns in this deployment: the canonical ones and the repository's attributes."""
    return load_features(settings).event_columns


EVENTS_TABLE = "kafka_events"  # the events topic, read by the event format
RAW_CHARS = 1000  # of an unreadable record, kept in its dead letter
# the reasons of records that are no event: no value, bytes that are not UTF-8, not one JSON object
UNREADABLE = {"empty-reason": "empty record", "not-utf8-reason": "not UTF-8", "malformed-reason": "malformed JSON"}
# Processing time in epoch ms. In streaming mode CURRENT_TIMESTAMP is evaluated once per
# record, so both halves read the same instant (Flink has no direct millisecond cast).
ARRIVED_AT_MS = (
    "CAST(TIMESTAMPDIFF(SECOND, TO_TIMESTAMP_LTZ(0, 3), CURRENT_TIMESTAMP) AS BIGINT) * 1000 "
    "+ EXTRACT(MILLISECOND FROM CURRENT_TIMESTAMP)"
)


@dataclass(frozen=True)
class FileSource:
    """A staged CSV (streaming/staging.py): a bounded replay."""

    path: Path

    @property
    def bounded(self) -> bool:
        return True


@dataclass(frozen=True)
class KafkaSource:
    """Canonical JSON events on a Kafka topic; bounded when stop_offsets is given."""

    topic: str
    bootstrap: str
    group_id: str
    start: str = "group-offsets"
    start_timestamp_ms: int | None = None
    stop_offsets: dict[int, int] | None = None  # partition -> offset to stop before

    @property
    def bounded(self) -> bool:
        return self.stop_offsets is not None


@dataclass(frozen=True)
class CatalogSource:
    """The item catalogue's changes on Kafka (debezium-json), always read from the start: the
    versioned table needs every item's history. Bounded when stop_offsets is given."""

    topic: str
    bootstrap: str
    idle_timeout_ms: int
    stop_offsets: dict[int, int] | None = None


Source = FileSource | KafkaSource
SinkMode = Literal["kafka", "blackhole"]
ITEM_DDL = ", ".join(f"`{c.name}` {c.flink}" for c in ITEM_COLUMNS)
# the change history in the archive: one row per change, the item's values after it (before
# it, for a delete), its time, its binlog position and its Kafka position
CHANGE_COLUMNS = (
    f"`op` STRING, {ITEM_DDL}, `changed_at` BIGINT, `binlog_file` STRING, `binlog_pos` BIGINT, "
    "`binlog_row` INT, `src_part` INT, `src_off` BIGINT"
)


def time_bounds(settings: Settings) -> tuple[int, int]:
    """Accepted event times, in ms: from min_event_time (epoch ms) to max_future_hours ahead of
    the clock as each record is read."""
    return int(settings.stream.min_event_time.timestamp() * 1000), int(settings.stream.max_future_hours * 3_600_000)


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
    return opts | _bounded(source.stop_offsets)


def _bounded(stop_offsets: dict[int, int] | None) -> dict[str, str]:
    if stop_offsets is None:
        return {}
    spec = ";".join(f"partition:{p},offset:{o}" for p, o in sorted(stop_offsets.items()))
    return {"scan.bounded.mode": "specific-offsets", "scan.bounded.specific-offsets": spec}


def _with(opts: dict[str, str]) -> str:
    quoted = {k: v.replace("'", "''") for k, v in opts.items()}
    return ", ".join(f"'{k}' = '{v}'" for k, v in quoted.items())


_POSITION = "`src_part` INT METADATA FROM 'partition' VIRTUAL, `src_off` BIGINT METADATA FROM 'offset' VIRTUAL"


def watermark_emit(source: Source, settings: Settings) -> str:
    """The source's watermark emission: the setting, or for auto, on-event for a bounded replay
    (deterministic) and on-periodic for an unbounded job."""
    emit = settings.stream.watermark_emit
    if emit != "auto":
        return emit
    return "on-event" if source.bounded else "on-periodic"


def event_format(bounds: tuple[int, int], events: tuple[Column, ...]) -> dict[str, str]:
    """The options of the format `lf-event` (jvm/: EventFormatFactory.java), which reads each
    Kafka record once: the acceptance rules and type errors of features/events.py."""
    opts = {
        "rules": orjson.dumps([r.spec(*bounds) for r in RULES]).decode(),
        "type-errors": orjson.dumps(type_errors(events)).decode(),
        "event-time-field": "event_time",
        "raw-chars": str(RAW_CHARS),
        **UNREADABLE,
    }
    return {"format": "lf-event"} | {f"lf-event.{k}": v for k, v in opts.items()}


# What the event format yields besides the event's fields: the first failed check (NULL when
# accepted), the first RAW_CHARS characters of a record that is no event, and its rowtime.
VERDICT = "`reason` STRING, `raw` STRING, `ts` TIMESTAMP_LTZ(3)"


def source_ddl(source: Source, settings: Settings, bounds: tuple[int, int]) -> str:
    """The source table: `raw_events` (files) or `kafka_events` (each record read once by the
    event format: typed, checked, with its reason). A rejected record gets rowtime 0, so it can
    never move the watermark or open a window."""
    events = event_columns(settings)
    wm = f"WATERMARK FOR ts AS ts - INTERVAL '{settings.stream.watermark_delay_ms / 1000:.3f}' SECOND"
    emit = f"'scan.watermark.emit.strategy' = '{watermark_emit(source, settings)}'"
    if isinstance(source, FileSource):
        ts = f"ts AS TO_TIMESTAMP_LTZ(CASE WHEN ({rejection_sql(*bounds)}) IS NULL THEN event_time ELSE 0 END, 3)"
        return (
            f"CREATE TEMPORARY TABLE raw_events ({_ddl((*SOURCE_COLUMNS, *events))}, {ts}, "
            f"`type_error` AS CAST(NULL AS STRING), {wm}) WITH ("
            f"'connector' = 'filesystem', 'path' = '{source.path.resolve().as_uri()}', 'format' = 'csv', "
            f"'csv.null-literal' = '{NULL}', 'csv.allow-comments' = 'false', "
            f"{emit})"
        )
    opts = (
        _kafka_options(source, settings, source.group_id)
        | event_format(bounds, events)
        | {
            "scan.watermark.emit.strategy": watermark_emit(source, settings),
            "scan.watermark.idle-timeout": f"{settings.stream.source_idle_timeout_s} s",
        }
    )
    return f"CREATE TEMPORARY TABLE {EVENTS_TABLE} ({_ddl(events)}, {VERDICT}, {_POSITION}, {wm}) WITH ({_with(opts)})"


def views(source: Source, bounds: tuple[int, int], events: tuple[Column, ...]) -> list[str]:
    """`checked_events` (every record with its reason, NULL when accepted), `events` (the
    accepted ones, with `late`) and `events_on_time`."""
    if isinstance(source, KafkaSource):
        checked = f"SELECT src_part, src_off, {_names(events)}, ts, reason, `raw` FROM {EVENTS_TABLE}"
    else:
        checked = (
            f"SELECT *, COALESCE(type_error, {rejection_sql(*bounds)}) AS reason, "
            "CAST(NULL AS STRING) AS `raw` FROM raw_events"
        )
    return [
        f"CREATE TEMPORARY VIEW checked_events AS {checked}",
        # late: at or behind the watermark on arrival; windows would drop it.
        f"CREATE TEMPORARY VIEW events AS SELECT {_names((*events, *SOURCE_COLUMNS))}, ts, "
        "COALESCE(ts <= CURRENT_WATERMARK(ts), FALSE) AS late FROM checked_events WHERE reason IS NULL",
        "CREATE TEMPORARY VIEW events_on_time AS SELECT * FROM events WHERE NOT late",
    ]


def _catalog_kafka(cat: CatalogSource) -> dict[str, str]:
    """The Kafka options both tables over the catalogue topic share (their group and format aside).
    Unbounded, a quiet catalogue topic goes idle after idle_timeout_ms, so its watermark stops
    holding back the joins."""
    kafka = {
        "connector": "kafka",
        "topic": cat.topic,
        "properties.bootstrap.servers": cat.bootstrap,
        "scan.startup.mode": "earliest-offset",
        **_bounded(cat.stop_offsets),
    }
    if cat.stop_offsets is None:  # bounded, it ends, and its watermark with it; idle early, it would join too soon
        kafka["scan.watermark.idle-timeout"] = f"{cat.idle_timeout_ms} ms"
    return kafka


def catalog_table_ddl(cat: CatalogSource, settings: Settings) -> str:
    """The catalogue as the versioned table `catalog_items` (primary key item_id, time: the
    change's time in the source database); enriched features join it (streaming/sql.py)."""
    versioned = _catalog_kafka(cat) | {
        "properties.group.id": settings.kafka.group_id + "-catalog",
        "value.format": "debezium-json",
        "value.debezium-json.ignore-parse-errors": "true",
    }
    return (
        f"CREATE TEMPORARY TABLE catalog_items ({ITEM_DDL}, "
        "`changed_at` TIMESTAMP_LTZ(3) METADATA FROM 'value.source.timestamp' VIRTUAL, "
        f"PRIMARY KEY (`{ITEM_KEY}`) NOT ENFORCED, WATERMARK FOR `changed_at` AS `changed_at`) "
        f"WITH ({_with(versioned)})"
    )


def catalog_history_sql(cat: CatalogSource, settings: Settings) -> list[str]:
    """The catalogue's change history to its archive: the topic as plain JSON, the sink, the INSERT."""
    row = f"ROW<{', '.join(f'`{c.name}` {c.flink}' for c in ITEM_COLUMNS)}>"
    raw = _catalog_kafka(cat) | {
        "properties.group.id": settings.kafka.group_id + "-catalog-history",
        "format": "json",
        "json.ignore-parse-errors": "true",
        "json.fail-on-missing-field": "false",
    }
    values = ", ".join(f"COALESCE(`after`, `before`).`{c.name}`" for c in ITEM_COLUMNS)
    return [
        f"CREATE TEMPORARY TABLE catalog_changes (`before` {row}, `after` {row}, `op` STRING, "
        "`source` ROW<`ts_ms` BIGINT, `file` STRING, `pos` BIGINT, `row` INT>, "
        "`src_part` INT METADATA FROM 'partition' VIRTUAL, `src_off` BIGINT METADATA FROM 'offset' VIRTUAL) "
        f"WITH ({_with(raw)})",
        _filesystem_sink(
            "catalog_history",
            f"{CHANGE_COLUMNS}, `{DAY_KEY}` STRING",
            settings.catalog_history_dir,
            settings.stream.archive_rollover_s,
            (DAY_KEY,),
        ),
        f"INSERT INTO catalog_history SELECT `op`, {values}, `source`.`ts_ms`, `source`.`file`, `source`.`pos`, "
        "`source`.`row`, src_part, src_off, "
        "DATE_FORMAT(TO_TIMESTAMP_LTZ(`source`.`ts_ms`, 3), 'yyyy-MM-dd') FROM catalog_changes WHERE `op` IS NOT NULL",
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


def enriched(settings: Settings, features: Collection[str] | None) -> bool:
    """Does one of these features (all, when None) read the catalogue?"""
    return any(f.enriched for f in load_features(settings).stream if features is None or f.name in features)


def catalog_source(settings: Settings, bounded: bool) -> CatalogSource:
    """The catalogue topic (created empty when missing); with a bounded event source, bounded
    at its current end, so the job ends and every change before it counts."""
    topic = settings.catalog.topic
    ensure_topics(settings, [topic], settings.catalog.partitions)
    idle_ms = int(settings.catalog.idle_timeout_s * 1000)
    return CatalogSource(topic, bootstrap(settings), idle_ms, end_offsets(settings, topic) if bounded else None)


def compiled_queries(settings: Settings) -> list[tuple[str, FlinkQuery]]:
    """(input view DDL, query) of every stream feature of the settings' repository."""
    return [compile_feature(f) for f in load_features(settings).stream]


def base_sql(
    source: Source,
    settings: Settings,
    bounds: tuple[int, int],
    archive: bool = True,
    catalog: CatalogSource | None = None,
) -> list[str]:
    """The job's statements before any feature, in order: the source, the views, the
    dead-letter sink and (archive=True) the raw-event archive, each sink with its INSERT;
    with `catalog`, the catalogue's versioned table and the change history."""
    events = event_columns(settings)
    stmts = [source_ddl(source, settings, bounds), *views(source, bounds, events)]
    dead_cols = f"`reason` STRING, {_ddl((*SOURCE_COLUMNS, *events))}, `raw` STRING"
    dead = f"SELECT reason, src_part, src_off, {_names(events)}, `raw` FROM checked_events WHERE reason IS NOT NULL"
    stmts += [
        _filesystem_sink(
            "dead_letters", dead_cols, settings.dead_letter_dir / "stream", settings.stream.archive_rollover_s
        ),
        f"INSERT INTO dead_letters {dead}",
    ]
    if archive:
        # the layout of common/archive.py: the event time's UTC day and hour
        arrival = f"`{ARRIVAL_COLUMN.name}` {ARRIVAL_COLUMN.flink}"
        arch_cols = (
            f"{_ddl((*SOURCE_COLUMNS, *events))}, `late` BOOLEAN, {arrival}, `{DAY_KEY}` STRING, `{HOUR_KEY}` STRING"
        )
        stmts += [
            _filesystem_sink(
                "archive", arch_cols, settings.archive_dir, settings.stream.archive_rollover_s, (DAY_KEY, HOUR_KEY)
            ),
            "INSERT INTO archive SELECT src_part, src_off, "
            + _names(events)
            + f", late, {ARRIVED_AT_MS}, DATE_FORMAT(ts, 'yyyy-MM-dd'), DATE_FORMAT(ts, 'HH') FROM events",
        ]
    if catalog:
        stmts.append(catalog_table_ddl(catalog, settings))
        if archive:
            stmts += catalog_history_sql(catalog, settings)
    return stmts


def feature_sql(view_ddl: str, q: FlinkQuery, sink_mode: SinkMode, settings: Settings) -> list[str]:
    """One feature's statements, in order: its input view, its sink and its INSERT."""
    return [view_ddl, *q.functions, feature_sink_ddl(q, sink_mode, settings), f"INSERT INTO sink_{q.output} {q.select}"]


def job_sql(
    source: Source,
    settings: Settings,
    sink_mode: SinkMode,
    bounds: tuple[int, int],
    archive: bool = True,
    features: Collection[str] | None = None,
    catalog: CatalogSource | None = None,
) -> list[str]:
    """Every statement of the job, in order (of only these features, when given); `catalog`
    is needed when one of them reads the catalogue."""
    stmts = base_sql(source, settings, bounds, archive, catalog if enriched(settings, features) else None)
    for view_ddl, q in compiled_queries(settings):
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
    catalog = catalog_source(settings, source.bounded) if enriched(settings, features) else None
    for sql in job_sql(source, settings, sink_mode, time_bounds(settings), archive, features, catalog):
        if sql.startswith("INSERT INTO "):
            stmts.add_insert_sql(sql)
        else:
            t_env.execute_sql(sql)
    return stmts
