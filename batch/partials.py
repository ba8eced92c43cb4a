"""Daily partial aggregates of the 30-day features, in the lake at lake/partials/<name>/dt=D/.

A day's partial is computed once from that day's archive and reused by the 30 as-of days
that cover it. It records the archive files it was computed from (`_archive.json`): when
they change (late events archived, a day rewritten), the partial is stale and recomputed.
Reconcile recomputes the day's partial too, so a re-run of a day always replaces it."""

from __future__ import annotations

import hashlib
import logging
from datetime import date
from pathlib import Path

import orjson

from common.settings import Settings
from features.definitions import BATCH_FEATURES, Feature

log = logging.getLogger(__name__)
STAMP = "_archive.json"  # '_' prefix: Spark and pyarrow skip it when reading the Parquet


def partial_dir(settings: Settings, f: Feature, day: date) -> Path:
    return settings.lake_partials_dir / f.name / f"dt={day.isoformat()}"


def archive_fingerprint(settings: Settings, day: date) -> str:
    """A digest of the day's archive files (name, size, mtime): it changes when they do."""
    folder = settings.archive_dir / f"dt={day.isoformat()}"
    h = hashlib.sha256()
    for p in sorted(folder.glob("hour=*/part-*")):
        st = p.stat()
        h.update(f"{p.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def is_fresh(settings: Settings, f: Feature, day: date) -> bool:
    stamp = partial_dir(settings, f, day) / STAMP
    return stamp.is_file() and orjson.loads(stamp.read_bytes())["archive"] == archive_fingerprint(settings, day)


def write_partials(spark, settings: Settings, days: list[date], events=None) -> None:
    """Compute and write (replacing) the partials of these days from the archive, in one
    query per feature. `events` may be an already loaded frame holding these days' events."""
    from pyspark.sql import functions as F

    from batch.reconcile import load_events
    from batch.spark import write_days
    from batch.sql import partial_sql

    if not days:
        return
    stamps = {d: archive_fingerprint(settings, d) for d in days}  # before reading: a later change stays visible
    if events is None:
        events = load_events(spark, settings, days, [])
    events.where(F.col("dt").isin(days)).createOrReplaceTempView("events")
    # one file per day: partials are small, and 30 of them are read for every as-of day
    jobs = [
        (spark.sql(partial_sql(f)).repartition("dt"), settings.lake_partials_dir / f.name, "dt") for f in BATCH_FEATURES
    ]
    write_days(settings, jobs, days)
    for day in days:  # stamped only once every partial of the day is written
        for f in BATCH_FEATURES:
            stamp = orjson.dumps({"archive": stamps[day], "day": day.isoformat()})
            (partial_dir(settings, f, day) / STAMP).write_bytes(stamp)
    log.info("daily partials written for %d day(s): %s..%s", len(days), days[0], days[-1])


def ensure_partials(spark, settings: Settings, days: list[date]) -> list[date]:
    """Make the partials of these (archived) days current; returns the days recomputed."""
    stale = [d for d in days if not all(is_fresh(settings, f, d) for f in BATCH_FEATURES)]
    write_partials(spark, settings, stale)
    return stale


def read_partials(spark, settings: Settings, f: Feature, days: list[date]):
    """The union of the partials of these days (each must exist), with their day `dt`."""
    root = settings.lake_partials_dir / f.name
    return spark.read.option("basePath", str(root)).parquet(*(str(partial_dir(settings, f, d)) for d in days))
