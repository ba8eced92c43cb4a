"""Point-in-time training sets: each spine row (user_id, ts, labels) with every requested
feature's value as it was at ts, derived from the definitions in features/ (docs/training.md).

Two modes. By event time (the default): an event counts at ts when its event time is at or
before ts, late events included, as the reconciled batch has them. As known at ts
(`as_known_at`): an event counts only once it had also arrived (archived `arrived_at`), which
is what the online store could have shown at ts."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from batch import catalog
from batch.asof import DAY_MS, latest, latest_global, running
from batch.reconcile import STATE_DAYS, load_events
from batch.spine import USER, check_spine, check_spine_columns, read_spine, user_id
from common.errors import PlatformError
from common.repository import load_features
from common.settings import Settings
from features.definitions import (
    Feature,
    LastN,
    LatestStateSum,
    Measure,
    Session,
    WindowAggregate,
)
from features.events import ARRIVAL_COLUMN, Column

log = logging.getLogger(__name__)
LOOKBACK_MS = STATE_DAYS * DAY_MS  # per-user state lives 7 days; windows are looked up as far back
KNOWN = "_known"  # when a window could first have been shown (--as-known-at)


@dataclass
class TrainingSetResult:
    out: Path
    rows: int = 0
    as_known_at: bool = False
    first_ts: int = 0
    last_ts: int = 0
    events_read: int = 0
    without_arrival: int = 0  # archived events with no arrived_at (older archives)
    late_without_arrival: int = 0  # of those, late: left out with --as-known-at
    seconds: dict[str, float] = field(default_factory=dict)  # per feature, and "total"


def resolve(settings: Settings, names: list[str]) -> list[Feature]:
    """The named features, in the order given; an unknown name is an error listing the known."""
    known = {f.name: f for f in load_features(settings).features}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise PlatformError(
            f"unknown feature(s): {', '.join(unknown) or '(none given)'}",
            f"--features takes a comma-separated list of: {', '.join(known)}",
        )
    return [known[n] for n in dict.fromkeys(names)]


def out_name(f: Feature, col: str) -> str:
    """A feature's column in the training set: its own name, or <feature>__<column>."""
    return f.name if col == f.name else f"{f.name}__{col}"


def multi_row(f: Feature) -> bool:
    """Does one user (or, for global features, one window) have several rows at a time? Those
    rows become one array column, ordered by the definition's ranks or extra keys."""
    return bool(set(f.keys) - {USER}) or any(c.name == "rank" for c in f.columns)


def output_columns(f: Feature) -> list[str]:
    """The training-set columns of feature f, in order."""
    names = [c.name for c in f.columns if c.name not in f.keys]
    if not multi_row(f):
        return [out_name(f, c) for c in names]
    bounds = [c for c in names if c in ("window_start", "window_end", "as_of")]
    return [out_name(f, c) for c in bounds] + [f.name]


# --- events -------------------------------------------------------------------------


def with_known_time(events, as_known_at: bool):
    """Adds `_a`, when an event arrived, and `_k`, the time from which it counts. By event
    time, `_k` is its event time; as known, also not before it arrived. A row without
    arrived_at (an archive from before it was recorded) counts as arrived at its event time
    when it was on time; a late one is left out (null), as its arrival is unknown."""
    from pyspark.sql import functions as F

    t, a = F.col("event_time"), F.col(ARRIVAL_COLUMN.name)
    arrived = F.when(a.isNotNull(), a).when(~F.col("late"), t)
    events = events.withColumn("_a", arrived)
    if not as_known_at:
        return events.withColumn("_k", t)
    # greatest() skips nulls: an unknown arrival must leave the event out, not count it at t
    known = F.when(F.col("_a").isNotNull(), F.greatest(t, F.col("_a")))
    return events.withColumn("_k", known).where(F.col("_k").isNotNull())


# --- per-user state (cart_amount, last_searches, last_event_time) ---------------------


def _newest_candidates(events, spine, n: int, as_known_at: bool):
    """Per spine row (with `_row`), the events that can be among the n newest counted at ts:
    with j events up to ts by event time and v of them counted (arrived), the newest counted
    are among the last j - v + n by event time, which are joined in by index."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_time = Window.partitionBy(USER).orderBy("event_time", "src_part", "src_off")
    indexed = events.withColumn("_i", F.row_number().over(by_time))
    j = running(spine, indexed, "event_time", {"_j": (F.lit(1), F.count)}).drop("_ts")
    if as_known_at:
        v = running(spine, indexed, "_k", {"_v": (F.lit(1), F.count)}).select("_row", "_v")
        rows = spine.join(j, "_row").join(v, "_row")
    else:  # every event dated up to ts counts
        rows = spine.join(j, "_row").withColumn("_v", F.col("_j"))
    rows = rows.where(F.col("_v") > 0)
    first = F.greatest(F.col("_v") - n + 1, F.lit(1))
    picks = rows.select("_row", USER, "_ts", F.explode(F.sequence(first, F.col("_j"))).alias("_i"))
    return picks.join(indexed, [USER, "_i"]).where(
        (F.col("_k") <= F.col("_ts")) & (F.col("event_time") > F.col("_ts") - LOOKBACK_MS)
    )


def _latest_state_sum(f: Feature, agg: LatestStateSum, events, spine):
    """Sum over entities of their newest counted event's value: each entity's value holds from
    the time its newest event changes until the next change or the lookback's end, so it
    becomes a +value and a -value at those times, and a running sum per user adds them up."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    money = "DECIMAL(18, 2)"
    value = F.expr(
        f"CASE WHEN event_type = '{agg.member_type}' THEN CAST(COALESCE({agg.value}, 0) AS {money}) "
        f"ELSE CAST(0 AS {money}) END"
    )
    per_entity = Window.partitionBy(USER, agg.entity).orderBy("_k", "src_part", "src_off")
    newest = F.max(F.struct("event_time", "src_part", "src_off", value.alias("v")))
    x = events.withColumn("_L", newest.over(per_entity.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
    x = x.withColumn("_prev", F.lag("_L").over(per_entity))
    changes = x.where(F.col("_prev").isNull() | (F.col("_L") != F.col("_prev")))
    changes = changes.withColumn("_next", F.lead("_k").over(per_entity))
    ends = F.col("_L.event_time") + LOOKBACK_MS
    changes = changes.withColumn("_end", F.when(F.col("_next").isNull(), ends).otherwise(F.least("_next", ends)))
    held = changes.where((F.col("_k") < F.col("_end")) & (F.col("_L.v") != 0))
    deltas = held.select(USER, F.col("_k").alias("_at"), F.col("_L.v").alias("_d")).unionByName(
        held.select(USER, F.col("_end").alias("_at"), (-F.col("_L.v")).alias("_d"))
    )
    series = deltas.withColumn("_m", F.lit(None).cast("bigint")).unionByName(
        events.select(
            USER, F.col("_k").alias("_at"), F.lit(None).cast(money).alias("_d"), F.col("event_time").alias("_m")
        )
    )
    r = running(spine, series, "_at", {"_sum": (F.col("_d"), F.sum), "_max": (F.col("_m"), F.max)})
    present = F.col("_max") > F.col("_ts") - LOOKBACK_MS
    value_col, time_col = f.columns[-2].name, f.columns[-1].name
    return r.select(
        "_row",
        F.when(present, F.coalesce(F.col("_sum"), F.lit(0)).cast(money)).alias(out_name(f, value_col)),
        F.when(present, F.timestamp_millis("_max")).alias(out_name(f, time_col)),
    )


def state_feature(spark, f: Feature, events, spine, as_known_at: bool):
    """A per-user state feature at each spine's ts, over the events of (ts - 7 days, ts]."""
    from pyspark.sql import functions as F

    from batch.sql import spark_sql

    agg = f.aggregation
    if f.source_filter:
        events = events.where(f.source_filter)
    if isinstance(agg, LatestStateSum):
        return _latest_state_sum(f, agg, events, spine)
    # the definition's own query, grouped by spine row, over each row's candidate events
    n = agg.n if isinstance(agg, LastN) else 1
    _newest_candidates(events, spine, n, as_known_at).createOrReplaceTempView("events")
    df = spark.sql(spark_sql(f, by=("_row",)))
    return df.select("_row", *(F.col(c.name).alias(out_name(f, c.name)) for c in f.columns if c.name not in f.keys))


# --- windows (category_clicks_1h, user_sessions, uv_1m, hot_items_5m) -------------------


def _with_measure(f: Feature, m: Measure, keys: tuple[str, ...] | None = None) -> Feature:
    """f with one more measure (and output column); with `keys`, that measure alone per those keys."""
    agg = f.aggregation
    assert isinstance(agg, WindowAggregate)
    col = Column(m.name, "BIGINT", "Int64")
    if keys is None:
        return replace(f, aggregation=replace(agg, measures=(*agg.measures, m)), columns=(*f.columns, col))
    bounds = tuple(c for c in f.columns if c.name in ("window_start", "window_end"))
    cols = tuple(c for c in f.columns if c.name in keys)
    return replace(f, keys=keys, aggregation=replace(agg, measures=(m,), top_n=None), columns=(*cols, *bounds, col))


def window_series(spark, f: Feature, events, as_known_at: bool, delay_ms: int):
    """The feature's windows as a series: (group key, `_at` when it counts, `_end`, its
    output columns). A window counts from its end (a session's: last event + gap); as known,
    from its end plus the watermark delay, or the arrival of its last event if later, and
    only over on-time events, as the stream emitted it."""
    from pyspark.sql import functions as F

    from batch.sql import spark_sql

    agg = f.aggregation
    assert isinstance(agg, WindowAggregate)
    group = (USER,) if USER in f.keys else ()
    if as_known_at:
        events = events.where(~F.col("late"))
    events.createOrReplaceTempView("events")
    known = Measure(KNOWN, "max", "_k")
    single = not multi_row(f)
    rows = spark.sql(spark_sql(_with_measure(f, known) if as_known_at and single else f))
    w = agg.window
    if isinstance(w, Session):
        last = next(m.name for m in agg.measures if m.fn == "max_time")
        end = F.unix_millis(F.col(last)) + w.gap_s * 1000
    else:
        end = F.unix_millis(F.col("window_end"))
    value_cols = [c.name for c in f.columns if c.name not in group]
    if not single:  # the rows of one window (per user, or all) as one array
        bounds = ["window_start", "window_end"]
        inner = [c for c in value_cols if c not in bounds]
        rows = rows.groupBy(*group, *bounds).agg(F.sort_array(F.collect_list(F.struct(*inner))).alias(f.name))
        if as_known_at:
            times = spark.sql(spark_sql(_with_measure(f, known, group)))
            rows = rows.join(times, [*group, *bounds])
        value_cols = [*bounds, f.name]
    at = F.greatest(end + delay_ms, F.col(KNOWN)) if as_known_at else end
    series = rows.withColumn("_end", end).withColumn("_at", at)
    return series, group, value_cols


def window_feature(spark, f: Feature, events, spine, as_known_at: bool, delay_ms: int):
    """The newest window of the user (or of all, for global features) counted at ts and
    ended within the lookback."""
    from pyspark.sql import functions as F

    series, group, cols = window_series(spark, f, events, as_known_at, delay_ms)
    value = F.struct(*(F.col(c).alias(out_name(f, c)) for c in cols), F.col("_end"))
    if group:
        found = latest(spine, series, "_at", value, F.col("_end"))
    else:
        found = latest_global(spine, series, "_at", value, F.col("_end"), LOOKBACK_MS)
    fresh = F.col("_v._end") > F.col("_ts") - LOOKBACK_MS
    return found.select("_row", *(F.when(fresh, F.col(f"_v.{out_name(f, c)}")).alias(out_name(f, c)) for c in cols))


# --- 30-day features (top_brands_30d, purchase_stats_30d) -----------------------------


def as_of_day(as_known_at: bool, delay_ms: int):
    """The as-of day whose 30-day values count at ts: the day before ts's day, since a day's
    batch exists only once the day is over; as known, the day before the day of
    ts - the reconcile delay, since the daily batch runs that long after midnight."""
    from pyspark.sql import functions as F

    ts = F.col("_ts") - delay_ms if as_known_at else F.col("_ts")
    return F.date_sub(F.to_date(F.timestamp_millis(ts)), 1)


def _lake_folders(settings: Settings, f: Feature, days: list[date]) -> list[Path]:
    return [settings.lake_features_dir / f.name / f"as_of={d.isoformat()}" for d in days]


def check_lake(settings: Settings, features: list[Feature], days: list[date]) -> None:
    """Every 30-day feature must be in the lake as of each of these days."""
    for f in features:
        if f.layer != "batch":
            continue
        folders = _lake_folders(settings, f, days)
        missing = [d for d, p in zip(days, folders, strict=True) if not (p / "_SUCCESS").is_file()]
        if missing:
            raise PlatformError(
                f"{f.name} is not in the lake as of {', '.join(map(str, missing[:5]))}"
                + (f" and {len(missing) - 5} more day(s)" if len(missing) > 5 else ""),
                f"compute those days first: lambda-features batch backfill --start {missing[0]} --end {missing[-1]}",
            )


def lake_rolling(spark, settings: Settings, f: Feature, days: list[date]):
    """The lake's rows of a 30-day feature as of these days (`check_lake` first)."""
    return spark.read.parquet(*(str(p) for p in _lake_folders(settings, f, days)))


def known_rolling(spark, f: Feature, events, days: list[date], delay_ms: int):
    """A 30-day feature as of these days over only the events that had arrived when that
    day's batch ran (the day after as_of, `delay_ms` after midnight): daily partials split
    by the first as-of day an event's arrival lets it count in, merged as the batch does."""
    from pyspark.sql import functions as F

    from batch.sql import merge_sql, partial_sql, spread_sql

    counted = events.where(F.col("_a").isNotNull())
    first = F.to_date(F.timestamp_millis(F.col("_a") - delay_ms - 1))
    counted.withColumn("_first", first).createOrReplaceTempView("events")
    spark.sql(partial_sql(f, by=("dt", "_first"))).createOrReplaceTempView("daily")
    spread = spread_sql("daily", "dt", f.aggregation.days, days[0].isoformat(), days[-1].isoformat())  # type: ignore[union-attr]
    spark.sql(spread).where(F.col("as_of") >= F.col("_first")).createOrReplaceTempView("partials")
    return spark.sql(merge_sql(f)).where(F.col("as_of").isin(days))


def rolling_feature(spark, settings: Settings, f: Feature, events, spine, days: list[date], as_known_at: bool):
    """A 30-day feature as of the day before ts's day (see `as_of_day`), joined per user."""
    from pyspark.sql import functions as F

    delay = settings.orchestration.reconcile_delay_minutes * 60_000
    if as_known_at:
        rows = known_rolling(spark, f, events, days, delay)
    else:
        rows = lake_rolling(spark, settings, f, days)
    value_cols = [c.name for c in f.columns if c.name not in (*f.keys, "as_of")]
    if multi_row(f):
        rows = rows.groupBy("as_of", USER).agg(F.sort_array(F.collect_list(F.struct(*value_cols))).alias(f.name))
        value_cols = [f.name]
    picked = spine.withColumn("as_of", as_of_day(as_known_at, delay)).join(rows, ["as_of", USER], "left")
    return picked.select(
        "_row", F.col("as_of").alias(out_name(f, "as_of")), *(F.col(c).alias(out_name(f, c)) for c in value_cols)
    )


# --- the whole set ----------------------------------------------------------------------


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _day(ms: int) -> date:
    return date(1970, 1, 1) + timedelta(days=ms // DAY_MS)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=k) for k in range((last - first).days + 1)]


def archive_days(features: list[Feature], first_ts: int, last_ts: int, as_known_at: bool, delay_ms: int) -> list[date]:
    """The archive days the features read: 7 days of lookback before the first ts and one
    more (a window or session ending in the lookback may start the day before); the 30 days
    before each as-of day, when --as-known-at recomputes the 30-day features."""
    first, last = _day(first_ts) - timedelta(days=STATE_DAYS + 1), _day(last_ts)
    rolling = [f.aggregation.days for f in features if f.layer == "batch"]  # type: ignore[union-attr]
    if rolling and as_known_at:
        first = min(first, _day(first_ts - delay_ms) - timedelta(days=max(rolling)))
    return _days(first, last) if any(f.layer == "stream" for f in features) or as_known_at else []


def assemble(spine, parts: list):
    """The spine's rows in its order, each with its columns from every part (all keyed by
    `_row`): one shuffle of their union grouped by row, not a join per part. Cached before
    the sort, whose sampling pass would otherwise compute it twice."""
    from pyspark.sql import functions as F

    frames = [spine.drop("_ts"), *parts]
    types = {c.name: c.dataType for df in frames for c in df.schema.fields if c.name != "_row"}
    wide = None
    for df in frames:
        cols = [F.col(c) if c in df.columns else F.lit(None).cast(t).alias(c) for c, t in types.items()]
        one = df.select("_row", *cols)
        wide = one if wide is None else wide.unionByName(one)
    rows = wide.groupBy("_row").agg(*(F.first(c, ignorenulls=True).alias(c) for c in types)).cache()
    return rows.orderBy("_row").drop("_row")


def build(settings: Settings, spine_path: Path, names: list[str], out: Path, as_known_at: bool) -> TrainingSetResult:
    """Write the training set for this spine and these features to `out` (Parquet), one row
    per spine row in the spine's order: its columns, then each feature's columns."""
    from pyspark.sql import functions as F

    from batch.spark import spark_session

    features = resolve(settings, names)
    if out.exists():
        raise PlatformError(f"{out} already exists", "remove it or pick another --out")
    taken = set(check_spine_columns(spine_path)) & {c for f in features for c in output_columns(f)}
    if taken:
        raise PlatformError(f"the spine has columns named like feature columns: {', '.join(sorted(taken))}")
    started = time.monotonic()
    result = TrainingSetResult(out=out, as_known_at=as_known_at)
    spark = spark_session(settings)
    spine = read_spine(spark, spine_path)
    (settings.home / "tmp").mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="training-set-", dir=settings.home / "tmp"))
    try:
        spine.write.parquet(str(staging / "_spine"))
        spine = spark.read.parquet(str(staging / "_spine"))
        result.rows, result.first_ts, result.last_ts, ts_days = check_spine(spine, spine_path)
        log.info(
            "spine: %d rows, ts %s .. %s; features %s, %s",
            result.rows,
            _iso(result.first_ts),
            _iso(result.last_ts),
            ", ".join(f.name for f in features),
            "as known at ts" if as_known_at else "by event time",
        )
        keys = spine.select("_row", user_id().alias(USER), "_ts")
        watermark = settings.stream.watermark_delay_ms
        reconcile_delay = settings.orchestration.reconcile_delay_minutes * 60_000
        as_of_days = sorted({d - timedelta(days=1) for d in ts_days})
        if as_known_at:  # the as-of day may be one earlier for a ts within the delay after midnight
            one = timedelta(days=1)
            as_of_days = _days(_day(result.first_ts - reconcile_delay) - one, _day(result.last_ts) - one)
        else:
            check_lake(settings, features, as_of_days)
        events = None
        days = archive_days(features, result.first_ts, result.last_ts, as_known_at, reconcile_delay)
        if days:
            missing: list[str] = []
            events = load_events(spark, settings, days, missing)
            if missing:
                shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
                log.warning("no archive for %d of the %d day(s) read: %s", len(missing), len(days), shown)
            events = events.where(F.col("event_time") <= result.last_ts)
            if any(f.enriched for f in features):  # as the catalogue knew each item at its event time
                events = catalog.enrich(spark, settings, events)
            counts = events.agg(
                F.count("*"),
                F.sum(F.col(ARRIVAL_COLUMN.name).isNull().cast("int")),
                F.sum((F.col(ARRIVAL_COLUMN.name).isNull() & F.col("late")).cast("int")),
            ).first()
            result.events_read, result.without_arrival, result.late_without_arrival = (int(c or 0) for c in counts)
            if as_known_at and result.without_arrival:
                log.warning(
                    "%d archived events have no arrival time (an archive from before it was recorded): "
                    "on-time ones count from their event time, the %d late ones are left out",
                    result.without_arrival,
                    result.late_without_arrival,
                )
            events = with_known_time(events, as_known_at)
        for n, f in enumerate(features, start=1):
            t0 = time.monotonic()
            if f.layer == "batch":
                df = rolling_feature(spark, settings, f, events, keys, as_of_days, as_known_at)
            elif f.windowed:
                df = window_feature(spark, f, events, keys, as_known_at, watermark)
            else:
                df = state_feature(spark, f, events, keys, as_known_at)
            df.write.parquet(str(staging / f.name))
            result.seconds[f.name] = time.monotonic() - t0
            log.info("feature %d/%d %s: done in %.0fs", n, len(features), f.name, result.seconds[f.name])
        assemble(spine, [spark.read.parquet(str(staging / f.name)) for f in features]).write.parquet(str(out))
    finally:
        spark.catalog.clearCache()
        shutil.rmtree(staging, ignore_errors=True)
    result.seconds["total"] = time.monotonic() - started
    log.info("training set: %d rows -> %s in %.0fs", result.rows, out, result.seconds["total"])
    return result
