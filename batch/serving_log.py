"""The serving log in the lake: the records of topic SERVING__LOG_TOPIC, one row per served
feature value, in Parquet by the request's UTC day, `lake/serving_log/dt=D/part-<partition>-
<first offset>.parquet`, as the raw events are archived by event day. The archiver reads
what its consumer group has not committed, writes, then commits; a re-run after a crash
rewrites the same files (named by their first offset), so nothing is lost or doubled."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path

import orjson

from common.kafka import consume_new, ensure_topics
from common.lake import DAY_KEY, partition_dir
from common.settings import Settings

log = logging.getLogger(__name__)
GROUP = "lambda-features-serving-log-archive"
COLUMNS = ("requested_at", "user_id", "feature", "status", "value", "time", "src_part", "src_off")


def schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("requested_at", pa.int64()),  # epoch ms: when the API read the values
            ("user_id", pa.int64()),
            ("feature", pa.string()),
            ("status", pa.string()),  # PRESENT, NOT_FOUND, STALE
            ("value", pa.string()),  # the served value as JSON text; null when NOT_FOUND
            ("time", pa.string()),  # the served event_time (stream) or as_of day (batch)
            ("src_part", pa.int32()),
            ("src_off", pa.int64()),
        ]
    )


def rows(partition: int, offset: int, value: bytes) -> list[tuple]:
    """The rows of one log record, one per feature served."""
    r = orjson.loads(value)
    out = []
    for name, e in r["features"].items():
        v = e.get("value")
        when = e.get("event_time", e.get("as_of"))
        out.append(
            (r["requested_at"], r["user_id"], name, e["status"], None if v is None else orjson.dumps(v).decode(), when)
            + (partition, offset)
        )
    return out


def day_dir(settings: Settings, day: date) -> Path:
    return partition_dir(settings.serving_log_dir, DAY_KEY, day)


def _write(settings: Settings, messages: list[tuple[int, int, bytes]], counts: dict[date, int]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files: dict[tuple[date, int], list[tuple]] = {}
    first: dict[tuple[date, int], int] = {}
    for p, o, v in messages:
        rs = rows(p, o, v)
        if not rs:
            continue
        day = datetime.fromtimestamp(rs[0][0] / 1000, UTC).date()
        files.setdefault((day, p), []).extend(rs)
        first.setdefault((day, p), o)
    for (day, p), rs in files.items():
        folder = day_dir(settings, day)
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist([dict(zip(COLUMNS, r, strict=True)) for r in rs], schema=schema())
        name = f"part-{p}-{first[(day, p)]:020d}.parquet"
        pq.write_table(table, folder / f".{name}")
        (folder / f".{name}").rename(folder / name)  # a reader never sees half a file
        counts[day] = counts.get(day, 0) + len(rs)


def archive(settings: Settings) -> dict[date, int]:
    """Archive the records logged since the last run; returns the rows written per day."""
    from common.services import ensure_running, kafka_service

    if not settings.kafka.bootstrap:  # the platform's local broker
        ensure_running(kafka_service(settings))
    topic = settings.serving.log_topic
    ensure_topics(settings, [topic], settings.kafka.partitions)
    counts: dict[date, int] = {}
    n = consume_new(settings, topic, GROUP, lambda messages: _write(settings, messages, counts))
    log.info("serving log: %d record(s) archived from %s (%s)", n, topic, counts or "nothing new")
    return counts


def read_day(settings: Settings, day: date):
    """The day's archived rows (a pyarrow Table, empty when nothing was logged)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = sorted(day_dir(settings, day).glob("part-*.parquet"))
    if not parts:
        return schema().empty_table()
    return pa.concat_tables(pq.read_table(p) for p in parts)
