"""Recompute every streaming feature for day D from the raw-event archive, late events
included, with the Spark SQL compiled from features/ (batch/sql.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from batch.archive import events_between, load_events
from batch.partials import write_partials
from batch.spark import spark_session, write_days
from batch.sql import reduce_sql, spark_sql, spread_sql
from common import archive, lake
from common.clickhouse import first_time_column
from common.errors import PlatformError
from common.settings import Settings
from features.definitions import STREAM_FEATURES, Session

log = logging.getLogger(__name__)
STATE_DAYS = 7  # per-user state lives 7 days without activity


@dataclass
class ReconcileResult:
    day: date
    rows: dict[str, int] = field(default_factory=dict)
    missing_days: list[str] = field(default_factory=list)
    missing_hours: list[str] = field(default_factory=list)
    lake: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """No archive gap: every earlier state day present, no hour missing inside the day."""
        return not self.missing_days and not self.missing_hours


def _gaps(settings: Settings, day: date) -> ReconcileResult:
    """The day's result so far: its missing hours, and the state days (D-6..D) missing after the archive began."""
    state_days = [day - timedelta(days=k) for k in range(STATE_DAYS - 1, -1, -1)]
    return ReconcileResult(
        day, missing_days=archive.missing_days(settings, state_days), missing_hours=archive.missing_hours(settings, day)
    )


def compute_days(spark, days: list[date], source) -> dict:
    """DataFrames of every streaming feature for these days, each with its day `dt`: windows
    (and sessions) starting on a day, and per-user state as of a day's end. One query per
    feature serves the whole range; `source` must hold days[0]-6 .. days[-1]+1."""
    from pyspark.sql import functions as F

    lo, hi = days[0], days[-1]
    on_days = F.col("dt").isin(days)
    frames = {}
    for f in STREAM_FEATURES:
        if f.windowed:
            w = f.aggregation.window  # type: ignore[union-attr]
            if isinstance(w, Session):  # a session starting on D may have begun late on D-1, or end on D+1
                events = events_between(source, lo - timedelta(days=1), hi + timedelta(days=1))
            else:  # a window starting on D holds only events of [D, D + 1 day + its size)
                events = events_between(source, lo, hi, w.size_s * 1000)
            events.createOrReplaceTempView("events")
            df = spark.sql(spark_sql(f)).withColumn("dt", F.to_date(F.col(first_time_column(f))))
        else:  # each day reduced once, then counted in the 7 as-of days it belongs to
            events_between(source, lo - timedelta(days=STATE_DAYS - 1), hi).createOrReplaceTempView("events")
            spark.sql(reduce_sql(f)).drop("_rn").createOrReplaceTempView("reduced")
            spark.sql(spread_sql("reduced", "dt", STATE_DAYS, lo.isoformat(), hi.isoformat())).drop(
                "dt"
            ).createOrReplaceTempView("events")
            df = spark.sql(spark_sql(f, by=("as_of",))).withColumnRenamed("as_of", "dt")
        frames[f.name] = df.where(on_days)
    return frames


def reconcile_days(spark, settings: Settings, days: list[date], source) -> dict[date, ReconcileResult]:
    """Compute these (archived) days and write them to the lake at lake/features/<name>/dt=D/
    (replacing each day), with the days' partials of the 30-day features."""
    results = {day: _gaps(settings, day) for day in days}
    frames = compute_days(spark, days, source)
    write_days(settings, [(df, lake.feature_dir(settings, name), lake.DAY_KEY) for name, df in frames.items()], days)
    for day, result in results.items():
        for name in frames:
            out = lake.feature_day_dir(settings, name, day)
            result.rows[name], result.lake[name] = lake.parquet_rows(out), str(out)
    for name in frames:
        log.info(
            "%s: %d rows over %d day(s) -> %s",
            name,
            sum(r.rows[name] for r in results.values()),
            len(days),
            lake.feature_dir(settings, name),
        )
    write_partials(spark, settings, days, source)
    return results


def reconcile(settings: Settings, day: date) -> ReconcileResult:
    """Recompute the day into the lake (replacing it) and its partials, then load ClickHouse."""
    archive.require_ended(day)
    if not archive.is_archived(settings, day):
        raise PlatformError(
            f"no archived events for {day} under {settings.archive_dir}",
            "run the stream job over that day first, or pick another --date",
        )
    spark = spark_session(settings)
    # one read (cached) of every day this one needs: D-6..D+1
    source = load_events(spark, settings, [day + timedelta(days=k) for k in range(1 - STATE_DAYS, 2)], [])
    try:
        result = reconcile_days(spark, settings, [day], source)[day]
    finally:
        spark.catalog.clearCache()
    load_clickhouse(settings, result)
    return result


def load_clickhouse(settings: Settings, result: ReconcileResult) -> None:
    """Replace the day in `<name>_batch` with the lake's Parquet, then mark it reconciled,
    which switches the serving view `<name>` to the batch rows for that day."""
    from common.clickhouse import create_tables, get_client

    create_tables(settings)
    ch = get_client(settings)
    db = settings.clickhouse.database
    for f in STREAM_FEATURES:
        table = f"{db}.{f.name}_batch"
        cols = ", ".join(f"`{c.name}`" for c in f.columns)
        if f.windowed:
            ch.command(f"ALTER TABLE {table} DROP PARTITION '{result.day.isoformat()}'")
        ch.command(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM file('{result.lake[f.name]}/*.parquet', Parquet)")
        if f.updating:
            ch.command(f"OPTIMIZE TABLE {table} FINAL")  # a re-run leaves no duplicate behind
        # windows read the day itself; per-user state also reads the days before it
        gaps = result.missing_hours + ([] if f.windowed else [f"{d} (state)" for d in result.missing_days])
        ch.command(
            f"INSERT INTO {db}.reconciled_days VALUES ('{f.name}', '{result.day.isoformat()}', "
            f"{result.rows[f.name]}, {int(not gaps)}, '{', '.join(gaps)}', now64(3))"
        )
