"""The 30-day features as of day D (batch only): lake and ClickHouse, then the online store
(batch/publish.py) unless publication is left to a later step."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from common.errors import PlatformError
from common.settings import Settings
from features.definitions import BATCH_FEATURES, RollingStats, RollingTopN

log = logging.getLogger(__name__)


@dataclass
class Features30dResult:
    day: date
    rows: dict[str, int] = field(default_factory=dict)
    lake: dict[str, str] = field(default_factory=dict)
    missing_days: list[str] = field(default_factory=list)
    partials_computed: list[str] = field(default_factory=list)  # days whose partial was (re)computed
    users_published: int | None = None  # None: not published


def window_days(day: date) -> dict[str, list[date]]:
    """Per 30-day feature, the days it covers as of `day`, oldest first."""
    out = {}
    for f in BATCH_FEATURES:
        agg = f.aggregation
        assert isinstance(agg, RollingTopN | RollingStats)
        out[f.name] = [day - timedelta(days=k) for k in range(agg.days - 1, -1, -1)]
    return out


def compute(spark, settings: Settings, day: date, rescan: bool = False) -> tuple[dict, Features30dResult]:
    """DataFrames of the 30-day features as of `day`: merged from the daily partials
    (computing missing or stale ones), or with rescan=True from the raw events of every day."""
    from batch.partials import ensure_partials, read_partials
    from batch.reconcile import load_events
    from batch.sql import merge_sql, spark_sql

    result = Features30dResult(day)
    frames = {}
    spans = window_days(day)
    present = sorted({d for days in spans.values() for d in days if archived(settings, d)})
    result.missing_days = sorted({d.isoformat() for days in spans.values() for d in days} - {str(d) for d in present})
    if not rescan:
        result.partials_computed = [d.isoformat() for d in ensure_partials(spark, settings, present)]
    for f in BATCH_FEATURES:
        days = [d for d in spans[f.name] if d in present]
        if rescan:
            load_events(spark, settings, days, []).createOrReplaceTempView("events")
            frames[f.name] = spark.sql(spark_sql(f, day.isoformat()))
        else:
            read_partials(spark, settings, f, days).createOrReplaceTempView("partials")
            frames[f.name] = spark.sql(merge_sql(f, day.isoformat()))
    return frames, result


def archived(settings: Settings, day: date) -> bool:
    return (settings.archive_dir / f"dt={day.isoformat()}").is_dir()


def run(settings: Settings, day: date, publish: bool = True, rescan: bool = False) -> Features30dResult:
    """Compute, write the lake (as_of=D, replaced), replace D in ClickHouse; then publish to
    the online store unless publish=False (Dagster publishes after its checks pass)."""
    from batch.reconcile import parquet_rows, require_ended
    from batch.spark import spark_session, write_parquet

    require_ended(day)
    if not any(archived(settings, d) for days in window_days(day).values() for d in days):
        raise PlatformError(
            f"no archived events in the 30 days up to {day} under {settings.archive_dir}",
            "run the stream job over those days first, or pick another --date",
        )
    spark = spark_session(settings)
    frames, result = compute(spark, settings, day, rescan)
    outs = {f.name: settings.lake_features_dir / f.name / f"as_of={day.isoformat()}" for f in BATCH_FEATURES}
    write_parquet([(frames[name], out) for name, out in outs.items()])
    for f in BATCH_FEATURES:
        out = outs[f.name]
        result.rows[f.name], result.lake[f.name] = parquet_rows(out), str(out)
        log.info("%s as of %s: %d rows -> %s", f.name, day, result.rows[f.name], out)
    load_clickhouse(settings, result)
    if publish:
        from batch.publish import publish_online

        result.users_published = publish_online(settings, day)
    return result


def load_clickhouse(settings: Settings, result: Features30dResult) -> None:
    """Replace the as_of partition of each 30-day feature's table with the lake's Parquet."""
    from common.clickhouse import create_tables, get_client

    create_tables(settings)
    ch = get_client(settings)
    db = settings.clickhouse.database
    for f in BATCH_FEATURES:
        cols = ", ".join(f"`{c.name}`" for c in f.columns)
        ch.command(f"ALTER TABLE {db}.{f.name} DROP PARTITION '{result.day.isoformat()}'")
        ch.command(
            f"INSERT INTO {db}.{f.name} ({cols}) SELECT {cols} FROM file('{result.lake[f.name]}/*.parquet', Parquet)"
        )
