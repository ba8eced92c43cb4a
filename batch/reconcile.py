"""Recompute every streaming feature for day D from the raw-event archive, late events
included, with the Spark SQL compiled from features/ (batch/sql.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from common.clickhouse import first_time_column
from common.errors import PlatformError
from common.settings import Settings
from features.definitions import STREAM_FEATURES, Session
from features.events import ARRIVAL_COLUMN, EVENT_COLUMNS, SOURCE_COLUMNS

log = logging.getLogger(__name__)
SPARK_TYPES = {"STRING": "string", "BIGINT": "bigint", "DOUBLE": "double", "INT": "int"}
# arrived_at is null in archives written before the stream recorded it
ARCHIVE_DDL = (
    ", ".join(f"`{c.name}` {SPARK_TYPES[c.flink]}" for c in (*EVENT_COLUMNS, *SOURCE_COLUMNS, ARRIVAL_COLUMN))
    + ", late boolean"
)
CORRUPT = "_corrupt_record"
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


def load_events(spark, settings: Settings, days: list[date], missing: list[str]):
    """The archived events of these days (columns `ts` and its day `dt` added); absent days go to `missing`."""
    from pyspark.sql import functions as F

    paths = []
    for d in days:
        p = settings.archive_dir / f"dt={d.isoformat()}"
        if p.is_dir():
            paths.append(str(p / "hour=*" / "part-*"))
        else:
            missing.append(d.isoformat())
    if not paths:
        empty = spark.createDataFrame([], ARCHIVE_DDL).withColumn("ts", F.timestamp_millis("event_time"))
        return empty.withColumn("dt", F.to_date("ts"))
    reader = spark.read.schema(f"{ARCHIVE_DDL}, {CORRUPT} string")
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


def parquet_rows(folder: Path) -> int:
    """Rows written to a Parquet folder, from the files' footers (no Spark job)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in folder.glob("*.parquet"))


def require_ended(day: date, option: str = "--date") -> None:
    """Batch days must be over: a future day has no complete archive."""
    if day > date.today():
        raise PlatformError(f"{option} {day} is in the future", "pick a day that has ended")


def missing_hours(settings: Settings, day: date) -> list[str]:
    """Hours without archived events between the day's first and last archived hour."""
    folder = settings.archive_dir / f"dt={day.isoformat()}"
    hours = sorted(int(p.name.split("=")[1]) for p in folder.glob("hour=*") if any(p.glob("part-*")))
    if not hours:
        return []
    return [f"{day.isoformat()} {h:02d}:00" for h in range(hours[0], hours[-1] + 1) if h not in hours]


def events_between(source, first: date, last: date, extra_ms: int = 0):
    """The events of `source` from day `first` through day `last` (and extra_ms beyond)."""
    from pyspark.sql import functions as F

    return source.where(F.col("event_time").between(day_ms(first), day_ms(last + timedelta(days=1)) + extra_ms - 1))


def day_ms(day: date) -> int:
    """Epoch milliseconds of the day's start (UTC)."""
    return int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)


def archive_gaps(settings: Settings, day: date) -> ReconcileResult:
    """The day's result so far: its missing hours, and the state days (D-6..D) missing after the archive began."""
    result = ReconcileResult(day)
    state_days = [(day - timedelta(days=k)).isoformat() for k in range(STATE_DAYS - 1, -1, -1)]
    # a gap is a day missing after the archive began; before it there was no history
    first = min((p.name.split("=")[1] for p in settings.archive_dir.glob("dt=*")), default=day.isoformat())
    result.missing_days = [d for d in state_days if first <= d and not (settings.archive_dir / f"dt={d}").is_dir()]
    result.missing_hours = missing_hours(settings, day)
    return result


def compute_days(spark, days: list[date], source) -> dict:
    """DataFrames of every streaming feature for these days, each with its day `dt`: windows
    (and sessions) starting on a day, and per-user state as of a day's end. One query per
    feature serves the whole range; `source` must hold days[0]-6 .. days[-1]+1."""
    from pyspark.sql import functions as F

    from batch.sql import reduce_sql, spark_sql, spread_sql

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
    from batch.partials import write_partials
    from batch.spark import write_days

    results = {day: archive_gaps(settings, day) for day in days}
    frames = compute_days(spark, days, source)
    write_days(settings, [(df, settings.lake_features_dir / name, "dt") for name, df in frames.items()], days)
    for day, result in results.items():
        for name in frames:
            out = settings.lake_features_dir / name / f"dt={day.isoformat()}"
            result.rows[name], result.lake[name] = parquet_rows(out), str(out)
    for name in frames:
        log.info(
            "%s: %d rows over %d day(s) -> %s",
            name,
            sum(r.rows[name] for r in results.values()),
            len(days),
            settings.lake_features_dir / name,
        )
    write_partials(spark, settings, days, source)
    return results


def reconcile(settings: Settings, day: date) -> ReconcileResult:
    """Recompute the day into the lake (replacing it) and its partials, then load ClickHouse."""
    from batch.spark import spark_session

    require_ended(day)
    if not (settings.archive_dir / f"dt={day.isoformat()}").is_dir():
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
