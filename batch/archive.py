"""Spark's reading of the raw-event archive (its layout: common/archive.py): the events of
some days, parsed and checked once, and slices of them by event time."""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta

from common import archive
from common.errors import PlatformError
from common.repository import load_features
from common.settings import Settings
from features.events import ARRIVAL_COLUMN, SOURCE_COLUMNS

log = logging.getLogger(__name__)
SPARK_TYPES = {"STRING": "string", "BIGINT": "bigint", "DOUBLE": "double", "INT": "int", "BOOLEAN": "boolean"}
CORRUPT = "_corrupt_record"


def archive_ddl(settings: Settings) -> str:
    """The archive's schema in Spark: the event's columns (the repository's attributes too; null
    in archives written before they were declared), its source position, arrival and late flag.
    arrived_at is null in archives written before the stream recorded it."""
    columns = (*load_features(settings).event_columns, *SOURCE_COLUMNS, ARRIVAL_COLUMN)
    return ", ".join(f"`{c.name}` {SPARK_TYPES[c.flink]}" for c in columns) + ", late boolean"


def empty_events(spark, settings: Settings):
    """No events, with the columns (`ts` and `dt` too) of what load_events gives."""
    from pyspark.sql import functions as F

    empty = spark.createDataFrame([], archive_ddl(settings)).withColumn("ts", F.timestamp_millis("event_time"))
    return empty.withColumn("dt", F.to_date("ts"))


def load_events(spark, settings: Settings, days: list[date], missing: list[str]):
    """The archived events of these days (columns `ts` and its day `dt` added); absent days go to `missing`."""
    from pyspark.sql import functions as F

    paths = []
    for d in days:
        if archive.is_archived(settings, d):
            paths.append(archive.day_parts(settings, d))
        else:
            missing.append(d.isoformat())
    if not paths:
        return empty_events(spark, settings)
    reader = spark.read.schema(f"{archive_ddl(settings)}, {CORRUPT} string")
    # cached: parsed once, and Spark checks the corrupt column only on a cache. Hashed by user:
    # the per-user features group, rank and sessionize by user_id (and more), so their
    # queries run on the cached partitions without another shuffle
    raw = reader.json(paths).repartition(settings.batch.shuffle_partitions, "user_id").cache()
    t0 = time.monotonic()
    events, corrupt = raw.agg(F.count("*"), F.count(CORRUPT)).first()  # type: ignore[misc]
    seconds = time.monotonic() - t0
    log.info(
        "archive: %d events of %d day(s) read and checked in %.0fs (%.0f events/s)",
        events,
        len(paths),
        seconds,
        events / max(seconds, 1e-3),
    )
    if corrupt:
        # name the files only now: a file-name column on every cached row would cost memory
        raw.unpersist()
        named = reader.json(paths).withColumn("_file", F.input_file_name()).cache()  # cached, as above
        bad = [r["_file"] for r in named.where(F.col(CORRUPT).isNotNull()).select("_file").distinct().collect()[:5]]
        named.unpersist()
        raise PlatformError(
            f"corrupt archive file(s): {', '.join(sorted(set(bad)))}",
            "restore or remove them (the stream writes only whole JSON lines), then re-run",
        )
    return raw.drop(CORRUPT).withColumn("ts", F.timestamp_millis("event_time")).withColumn("dt", F.to_date("ts"))


def events_between(source, first: date, last: date, extra_ms: int = 0):
    """The events of `source` from day `first` through day `last` (and extra_ms beyond)."""
    from pyspark.sql import functions as F

    return source.where(F.col("event_time").between(day_ms(first), day_ms(last + timedelta(days=1)) + extra_ms - 1))


def day_ms(day: date) -> int:
    """Epoch milliseconds of the day's start (UTC)."""
    return int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)
