"""Recompute every streaming feature for day D from the raw-event archive, late events
included, with the Spark SQL compiled from features/ (batch/sql.py).

A window belongs to the day it starts on. When the day before D has no archive (D is the
first archived day, or follows a gap), the sliding windows that start on it hold events of
D only: D's reconcile computes them too, as that day's rows ("lead-in" day, docs/batch.md)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date, timedelta

from batch import catalog
from batch.archive import events_between, load_events
from batch.partials import write_partials
from batch.spark import spark_session, write_days
from batch.sql import reduce_sql, spark_sql, spread_sql
from batch.stores import reach_stores
from common import archive, lake
from common.errors import PlatformError
from common.repository import load_features
from common.settings import Settings
from features.definitions import Feature, Hop, Session, WindowAggregate
from warehouse.tables import first_time_column

log = logging.getLogger(__name__)
STATE_DAYS = 7  # per-user state lives 7 days without activity
DAY_S = 86_400


@dataclass
class ReconcileResult:
    day: date
    rows: dict[str, int] = field(default_factory=dict)
    missing_days: list[str] = field(default_factory=list)
    missing_hours: list[str] = field(default_factory=list)
    lake: dict[str, str] = field(default_factory=dict)
    lead_in: bool = False  # a day without archive: only its windows that reach into the next day

    @property
    def complete(self) -> bool:
        """No archive gap: every earlier state day present, no hour missing inside the day."""
        return not self.missing_days and not self.missing_hours

    def gaps(self, f: Feature) -> list[str]:
        """What f's rows of the day may miss: hours inside the day; for per-user state, earlier
        days too; for a lead-in day after the archive began, the day itself."""
        if self.lead_in:
            return [f"{d} (no archive)" for d in self.missing_days]
        return self.missing_hours + ([] if f.windowed else [f"{d} (state)" for d in self.missing_days])


def _gaps(settings: Settings, day: date) -> ReconcileResult:
    """The day's result so far: its missing hours, and the state days (D-6..D) missing after the archive began."""
    state_days = [day - timedelta(days=k) for k in range(STATE_DAYS - 1, -1, -1)]
    return ReconcileResult(
        day, missing_days=archive.missing_days(settings, state_days), missing_hours=archive.missing_hours(settings, day)
    )


def _lead_in(settings: Settings, day: date) -> ReconcileResult:
    """A lead-in day's result so far: the day itself is a gap once the archive had begun."""
    return ReconcileResult(day, missing_days=archive.missing_days(settings, [day]), lead_in=True)


def reach_s(f: Feature) -> int:
    """How far into a day a window of f that starts before the day reaches, in seconds. Windows
    start at multiples of the slide since the epoch, so the last start before a midnight lies
    gcd(slide, 1 day) before it; a session starts on one of its own events, so never."""
    agg = f.aggregation
    if not isinstance(agg, WindowAggregate) or isinstance(agg.window, Session):
        return 0
    w = agg.window
    slide = w.slide_s if isinstance(w, Hop) else w.size_s
    return max(0, w.size_s - math.gcd(slide, DAY_S))


def lead_in_days(settings: Settings, days: list[date]) -> list[date]:
    """The days without archive right before an archived day of `days`."""
    before = {d - timedelta(days=1) for d in days}
    return sorted(d for d in before if d not in days and not archive.is_archived(settings, d))


def feature_days(f: Feature, days: list[date], lead_in: list[date]) -> list[date]:
    """The days f is computed for: lead-in days too when its windows reach into the next day."""
    return sorted(days + lead_in) if reach_s(f) else days


def compute_days(spark, settings: Settings, days: list[date], source, lead_in: list[date] | None = None) -> dict:
    """DataFrames of every streaming feature for these days, each with its day `dt`: windows
    (and sessions) starting on a day, and per-user state as of a day's end; for windows that
    reach into the next day, the `lead_in` days too. One query per feature serves the whole
    range; `source` must hold days[0]-6 .. days[-1]+1."""
    from pyspark.sql import functions as F

    lo, hi = days[0], days[-1]
    frames = {}
    for f in load_features(settings).stream:
        own = feature_days(f, days, lead_in or [])
        if f.windowed:
            w = f.aggregation.window  # type: ignore[union-attr]
            if isinstance(w, Session):  # a session starting on D may have begun late on D-1, or end on D+1
                events = events_between(source, lo - timedelta(days=1), hi + timedelta(days=1))
            else:  # a window starting on D holds only events of [D, D + 1 day + its size)
                events = events_between(source, own[0], hi, w.size_s * 1000)
            events.createOrReplaceTempView("events")
            df = spark.sql(spark_sql(f)).withColumn("dt", F.to_date(F.col(first_time_column(f))))
        else:  # each day reduced once, then counted in the 7 as-of days it belongs to
            events_between(source, lo - timedelta(days=STATE_DAYS - 1), hi).createOrReplaceTempView("events")
            spark.sql(reduce_sql(f)).drop("_rn").createOrReplaceTempView("reduced")
            spark.sql(spread_sql("reduced", "dt", STATE_DAYS, lo.isoformat(), hi.isoformat())).drop(
                "dt"
            ).createOrReplaceTempView("events")
            df = spark.sql(spark_sql(f, by=("as_of",))).withColumnRenamed("as_of", "dt")
        frames[f.name] = df.where(F.col("dt").isin(own))
    return frames


def reconcile_days(spark, settings: Settings, days: list[date], source) -> dict[date, ReconcileResult]:
    """Compute these (archived) days and their lead-in days, and write them to the lake at
    lake/features/<name>/dt=D/ (replacing each day), with the days' partials of the 30-day
    features. The results are by day, oldest first."""
    lead_in = lead_in_days(settings, days)
    if catalog.needed(settings):  # the events as the catalogue knew their items, as in the stream
        source = catalog.enrich(spark, settings, source)
    results = {day: _gaps(settings, day) for day in days} | {day: _lead_in(settings, day) for day in lead_in}
    results = dict(sorted(results.items()))
    frames = compute_days(spark, settings, days, source, lead_in)
    write_days(
        settings,
        [
            (frames[f.name], lake.feature_dir(settings, f.name), lake.DAY_KEY, feature_days(f, days, lead_in))
            for f in load_features(settings).stream
        ],
    )
    for f in load_features(settings).stream:
        for day in feature_days(f, days, lead_in):
            out = lake.feature_day_dir(settings, f.name, day)
            results[day].rows[f.name], results[day].lake[f.name] = lake.parquet_rows(out), str(out)
        log.info(
            "%s: %d rows over %d day(s) -> %s",
            f.name,
            sum(r.rows.get(f.name, 0) for r in results.values()),
            len(feature_days(f, days, lead_in)),
            lake.feature_dir(settings, f.name),
        )
    write_partials(spark, settings, days, source)
    return results


def reconcile(settings: Settings, day: date) -> dict[date, ReconcileResult]:
    """Recompute the day (and its lead-in day, if any) into the lake, replacing it, and its
    partials; then load ClickHouse. The results by day, oldest first."""
    archive.require_ended(day)
    if not archive.is_archived(settings, day):
        raise PlatformError(
            f"no archived events for {day} under {settings.archive_dir}",
            "run the stream job over that day first, or pick another --date",
        )
    reach_stores(settings, online=False)
    spark = spark_session(settings)
    # one read (cached) of every day this one needs: D-6..D+1
    source = load_events(spark, settings, [day + timedelta(days=k) for k in range(1 - STATE_DAYS, 2)], [])
    try:
        results = reconcile_days(spark, settings, [day], source)
    finally:
        spark.catalog.clearCache()
    for result in results.values():
        load_clickhouse(settings, result)
    return results


def load_clickhouse(settings: Settings, result: ReconcileResult) -> None:
    """Replace the day in `<name>_batch` with the lake's Parquet, then mark it reconciled,
    which switches the serving view `<name>` to the batch rows for that day. Only the
    features computed for the day (all, or a lead-in day's windows reaching past it)."""
    from common.clickhouse import get_client
    from warehouse.schema import create_tables

    create_tables(settings)
    ch = get_client(settings)
    db = settings.clickhouse.database
    for f in (f for f in load_features(settings).stream if f.name in result.rows):
        table = f"{db}.{f.name}_batch"
        cols = ", ".join(f"`{c.name}`" for c in f.columns)
        if f.windowed:
            ch.command(f"ALTER TABLE {table} DROP PARTITION '{result.day.isoformat()}'")
        ch.command(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM file('{result.lake[f.name]}/*.parquet', Parquet)")
        if f.updating:
            ch.command(f"OPTIMIZE TABLE {table} FINAL")  # a re-run leaves no duplicate behind
        gaps = result.gaps(f)
        ch.command(
            f"INSERT INTO {db}.reconciled_days VALUES ('{f.name}', '{result.day.isoformat()}', "
            f"{result.rows[f.name]}, {int(not gaps)}, '{', '.join(gaps)}', now64(3))"
        )
