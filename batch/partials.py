"""Daily partial aggregates of the 30-day features, in the lake at lake/partials/<name>/dt=D/.

A day's partial is computed once from that day's archive and reused by the 30 as-of days
that cover it. It records the archive files it was computed from (`_archive.json`): when
they change (late events archived, a day rewritten), the partial is stale and recomputed.
Reconcile recomputes the day's partial too, so a re-run of a day always replaces it."""

from __future__ import annotations

import logging
from datetime import date

import orjson

from batch.archive import load_events
from batch.spark import write_days
from batch.sql import partial_sql
from common import archive, lake
from common.repository import load_features
from common.settings import Settings
from features.definitions import Feature

log = logging.getLogger(__name__)
STAMP = "_archive.json"  # '_' prefix: Spark and pyarrow skip it when reading the Parquet


def is_fresh(settings: Settings, f: Feature, day: date) -> bool:
    stamp = lake.partial_dir(settings, f.name, day) / STAMP
    return stamp.is_file() and orjson.loads(stamp.read_bytes())["archive"] == archive.fingerprint(settings, day)


def write_partials(spark, settings: Settings, days: list[date], events=None) -> None:
    """Compute and write (replacing) the partials of these days from the archive, in one
    query per feature. `events` may be an already loaded frame holding these days' events."""
    from pyspark.sql import functions as F

    if not days:
        return
    stamps = {d: archive.fingerprint(settings, d) for d in days}  # before reading: a later change stays visible
    if events is None:
        events = load_events(spark, settings, days, [])
    events.where(F.col("dt").isin(days)).createOrReplaceTempView("events")
    # one file per day: partials are small, and 30 of them are read for every as-of day
    jobs = [
        (spark.sql(partial_sql(f)).repartition("dt"), lake.partials_dir(settings, f.name), lake.DAY_KEY, days)
        for f in load_features(settings).batch
    ]
    write_days(settings, jobs)
    for day in days:  # stamped only once every partial of the day is written
        for f in load_features(settings).batch:
            stamp = orjson.dumps({"archive": stamps[day], "day": day.isoformat()})
            (lake.partial_dir(settings, f.name, day) / STAMP).write_bytes(stamp)
    log.info("daily partials written for %d day(s): %s..%s", len(days), days[0], days[-1])


def ensure_partials(spark, settings: Settings, days: list[date]) -> list[date]:
    """Make the partials of these (archived) days current; returns the days recomputed."""
    stale = [d for d in days if not all(is_fresh(settings, f, d) for f in load_features(settings).batch)]
    write_partials(spark, settings, stale)
    return stale


def read_partials(spark, settings: Settings, f: Feature, days: list[date]):
    """The union of the partials of these days (each must exist), with their day `dt`."""
    root = lake.partials_dir(settings, f.name)
    return spark.read.option("basePath", str(root)).parquet(*(str(lake.partial_dir(settings, f.name, d)) for d in days))
