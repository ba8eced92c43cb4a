"""The 30-day features as of day D (batch only): lake and ClickHouse, then the online store
(batch/publish.py) unless publication is left to a later step."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from batch.archive import load_events
from batch.partials import ensure_partials, read_partials
from batch.publish import publish_online
from batch.spark import spark_session, write_days
from batch.sql import merge_sql, spark_sql, spread_sql
from batch.stores import reach_stores
from common import archive, lake
from common.errors import PlatformError
from common.repository import load_features
from common.settings import Settings
from features.definitions import RollingStats, RollingTopN

log = logging.getLogger(__name__)


@dataclass
class Features30dResult:
    day: date
    rows: dict[str, int] = field(default_factory=dict)
    lake: dict[str, str] = field(default_factory=dict)
    missing_days: list[str] = field(default_factory=list)
    partials_computed: list[str] = field(default_factory=list)  # days whose partial was (re)computed
    users_published: int | None = None  # None: not published


def window_days(settings: Settings, day: date) -> dict[str, list[date]]:
    """Per 30-day feature, the days it covers as of `day`, oldest first."""
    out = {}
    for f in load_features(settings).batch:
        agg = f.aggregation
        assert isinstance(agg, RollingTopN | RollingStats)
        out[f.name] = [day - timedelta(days=k) for k in range(agg.days - 1, -1, -1)]
    return out


def compute(spark, settings: Settings, days: list[date], rescan: bool = False) -> tuple[dict, dict]:
    """DataFrames of the 30-day features as of these days (each row with its day `dt`), and a
    result per day: merged from the daily partials (computing missing or stale ones), in one
    query per feature for the whole range; or, rescan=True (one day only), from the raw events."""
    from pyspark.sql import functions as F

    results = {day: Features30dResult(day) for day in days}
    for day, result in results.items():
        result.missing_days = [
            d.isoformat() for d in sorted(covered(settings, day)) if not archive.is_archived(settings, d)
        ]
    needed = sorted(
        d for d in set().union(*(covered(settings, day) for day in days)) if archive.is_archived(settings, d)
    )
    frames = {}
    if rescan:
        assert len(days) == 1, "a rescan is a check of one day"
        load_events(spark, settings, needed, []).createOrReplaceTempView("events")
        for f in load_features(settings).batch:
            frames[f.name] = spark.sql(spark_sql(f, days[0].isoformat())).withColumn("dt", F.col("as_of"))
        return frames, results
    computed = [d.isoformat() for d in ensure_partials(spark, settings, needed)]
    for day, result in results.items():
        result.partials_computed = [d for d in computed if date.fromisoformat(d) in covered(settings, day)]
    for f in load_features(settings).batch:
        read_partials(spark, settings, f, needed).createOrReplaceTempView("daily")
        spread = spread_sql("daily", "dt", f.aggregation.days, days[0].isoformat(), days[-1].isoformat())  # type: ignore[union-attr]
        spark.sql(spread).createOrReplaceTempView("partials")
        frames[f.name] = spark.sql(merge_sql(f)).where(F.col("as_of").isin(days)).withColumn("dt", F.col("as_of"))
    return frames, results


def covered(settings: Settings, day: date) -> set[date]:
    """The days the 30-day features as of `day` read (the longest span among them)."""
    return {d for span in window_days(settings, day).values() for d in span}


def compute_and_write(spark, settings: Settings, days: list[date], rescan: bool = False) -> dict:
    """Compute the 30-day features as of these days into the lake (as_of=D, each replaced)."""
    frames, results = compute(spark, settings, days, rescan)
    batch = load_features(settings).batch
    jobs = [(frames[f.name], lake.feature_dir(settings, f.name), lake.AS_OF_KEY, days) for f in batch]
    write_days(settings, jobs)
    for f in batch:
        for day, result in results.items():
            out = lake.as_of_dir(settings, f.name, day)
            result.rows[f.name], result.lake[f.name] = lake.parquet_rows(out), str(out)
        rows = sum(r.rows[f.name] for r in results.values())
        log.info("%s: %d rows as of %d day(s) -> %s", f.name, rows, len(days), lake.feature_dir(settings, f.name))
    return results


def run(settings: Settings, day: date, publish: bool = True, rescan: bool = False) -> Features30dResult:
    """Compute, write the lake (as_of=D, replaced), replace D in ClickHouse; then publish to
    the online store unless publish=False (Dagster publishes after its checks pass)."""
    archive.require_ended(day)
    reach_stores(settings, online=publish)
    if not any(archive.is_archived(settings, d) for d in covered(settings, day)):
        raise PlatformError(
            f"no archived events in the 30 days up to {day} under {settings.archive_dir}",
            "run the stream job over those days first, or pick another --date",
        )
    result = compute_and_write(spark_session(settings), settings, [day], rescan)[day]
    load_clickhouse(settings, result)
    if publish:
        result.users_published = publish_online(settings, day)
    return result


def load_clickhouse(settings: Settings, result: Features30dResult) -> None:
    """Replace the as_of partition of each 30-day feature's table with the lake's Parquet."""
    from common.clickhouse import get_client
    from warehouse.schema import create_tables

    create_tables(settings)
    ch = get_client(settings)
    db = settings.clickhouse.database
    for f in load_features(settings).batch:
        cols = ", ".join(f"`{c.name}`" for c in f.columns)
        ch.command(f"ALTER TABLE {db}.{f.name} DROP PARTITION '{result.day.isoformat()}'")
        ch.command(
            f"INSERT INTO {db}.{f.name} ({cols}) SELECT {cols} FROM file('{result.lake[f.name]}/*.parquet', Parquet)"
        )
