"""As-of joins in Spark without a range join: the spine rows and the time series are put in
one frame, sorted per key by time, and a running window function carries the series into
the spine rows. Each is one shuffle and one sort per key, so millions of spine rows work.

A spine frame has `_row` (its id), `user_id` and `_ts` (epoch ms). At equal times a series
row counts before a spine row: "at or before ts" is inclusive."""

from __future__ import annotations

DAY_MS = 86_400_000


def _stack(spine, series, at: str, key: str, value_cols: dict, order):
    """spine ∪ series as (key, _t, _p, _o, _row, *value_cols): series rows first at equal
    times, and among them by `order`."""
    from pyspark.sql import functions as F

    rows = spine.select(
        F.col(key),
        F.col("_ts").alias("_t"),
        F.lit(1).alias("_p"),
        F.lit(0).cast("bigint").alias("_o"),
        "_row",
        *(F.lit(None).alias(c) for c in value_cols),
    )
    values = series.select(
        F.col(key),
        F.col(at).cast("bigint").alias("_t"),
        F.lit(0).alias("_p"),
        order.cast("bigint").alias("_o"),
        F.lit(None).cast("bigint").alias("_row"),
        *(expr.alias(c) for c, expr in value_cols.items()),
    )
    return rows.unionByName(values)


def running(spine, series, at: str, aggregates: dict, key: str = "user_id", order=None):
    """For each spine row: (_row, _ts, name...) where each name is an aggregate over the series rows
    of its key at or before ts, `aggregates` = {name: (series expression, running function)}.
    The series expression is the value each series row carries (null on spine rows)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = F.lit(0) if order is None else order
    stacked = _stack(spine, series, at, key, {n: e for n, (e, _) in aggregates.items()}, order)
    w = Window.partitionBy(key).orderBy("_t", "_p", "_o").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    aggs = (fn(F.col(n)).over(w).alias(n) for n, (_, fn) in aggregates.items())
    out = stacked.select("_row", F.col("_t").alias("_ts"), "_p", *aggs)
    return out.where(F.col("_p") == 1).drop("_p")


def latest(spine, series, at: str, value, order, key: str = "user_id"):
    """For each spine row: (_row, _ts, _v), _v the struct `value` of the newest series row of its
    key with `at` <= ts; of series rows at the same time, the one greatest in `order`."""
    from pyspark.sql import functions as F

    return running(spine, series, at, {"_v": (value, lambda c: F.last(c, ignorenulls=True))}, key, order)


def latest_global(spine, series, at: str, value, order, lookback_ms: int):
    """As `latest`, for a series without a user key (one row per time): partitioned by the
    day of ts, each series row also counted in the days of the lookback after its own, so a
    spine row finds every series row of its lookback in its own day's partition."""
    from pyspark.sql import functions as F

    days = lookback_ms // DAY_MS + 1
    day = F.floor(F.col(at) / DAY_MS)
    spread = series.withColumn("_b", F.explode(F.sequence(day, day + days)))
    return latest(spine.withColumn("_b", F.floor(F.col("_ts") / DAY_MS)), spread, at, value, order, key="_b")
