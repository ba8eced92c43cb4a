"""The spine of a training set: a Parquet or CSV file of user_id, ts and label columns,
checked before Spark starts (names) and once Spark reads it (values)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from common.errors import PlatformError

USER = "user_id"


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def check_spine_columns(path: Path) -> list[str]:
    """The spine's columns, from its header or Parquet schema (before Spark starts): it must
    exist and have user_id and ts."""
    import pyarrow.parquet as pq

    if not path.exists():
        raise PlatformError(f"no spine at {path}", "--spine takes a Parquet file or folder, or a CSV file")
    try:
        if _is_csv(path):
            with path.open(encoding="utf-8") as fh:
                columns = [c.strip().strip('"') for c in fh.readline().rstrip("\r\n").split(",")]
        else:
            columns = pq.ParquetDataset(path).schema.names
    except Exception as e:
        raise PlatformError(f"cannot read the spine {path}: {str(e).splitlines()[0][:200]}") from None
    for required in ("ts", USER):
        if required not in columns:
            raise PlatformError(
                f"the spine {path} has no `{required}` column (it has: {', '.join(columns)})",
                "a spine needs user_id, ts (a timestamp, epoch ms or ISO-8601 text) and any label columns",
            )
    return columns


def read_spine(spark, path: Path):
    """The spine with `_row` (its order) and `_ts` (ts in epoch ms)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType, StringType, TimestampNTZType, TimestampType

    fmt = "csv" if _is_csv(path) else "parquet"
    try:
        if fmt == "csv":
            df = spark.read.option("header", True).option("inferSchema", True).csv(str(path))
        else:
            df = spark.read.parquet(str(path))
    except Exception as e:
        raise PlatformError(f"cannot read the spine {path} as {fmt}: {str(e).splitlines()[0][:200]}") from None
    kind = df.schema["ts"].dataType
    if isinstance(kind, TimestampType | TimestampNTZType):
        ts = F.unix_millis(F.col("ts").cast("timestamp"))
    elif isinstance(kind, NumericType):
        ts = F.col("ts").try_cast("bigint")  # epoch milliseconds
    elif isinstance(kind, StringType):
        ts = F.unix_millis(F.try_to_timestamp(F.col("ts")))  # try_: Spark's ANSI mode raises on bad text
    else:
        raise PlatformError(f"the spine's ts column is {kind.simpleString()}", "use a timestamp, epoch ms or ISO text")
    return df.withColumn("_row", F.monotonically_increasing_id()).withColumn("_ts", ts)


def user_id():
    """The spine's user_id as an integer; null where it is none (counted as an error)."""
    from pyspark.sql import functions as F

    return F.col(USER).try_cast("bigint")


def check_spine(spine, path: Path) -> tuple[int, int, int, list[date]]:
    """(rows, first ts, last ts, distinct days of ts); rows without user_id or ts are an error."""
    from pyspark.sql import functions as F

    uid = user_id()
    stats = spine.agg(
        F.count("*"), F.min("_ts"), F.max("_ts"), F.sum(F.when(uid.isNull() | F.col("_ts").isNull(), 1).otherwise(0))
    ).first()
    rows, first, last, bad = stats[0], stats[1], stats[2], stats[3] or 0
    if not rows:
        raise PlatformError(f"the spine {path} has no rows")
    if bad:
        raise PlatformError(
            f"{bad:,} of {rows:,} spine rows in {path} have no usable user_id or ts",
            "user_id must be an integer and ts a timestamp, epoch ms or ISO-8601 text",
        )
    days = [r[0] for r in spine.select(F.to_date(F.timestamp_millis("_ts"))).distinct().collect()]
    return rows, first, last, sorted(days)
