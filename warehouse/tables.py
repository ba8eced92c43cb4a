"""The feature tables: their names, the column that dates a row, and their CREATE statements,
with the batch's record of reconciled days and the checks' results."""

from __future__ import annotations

from common.repository import load_features
from common.settings import Settings
from features.definitions import Feature, Hop, WindowAggregate


def hop_of(f: Feature) -> Hop | None:
    """The sliding window of a feature the stream writes as tiles, else None."""
    agg = f.aggregation
    return agg.window if isinstance(agg, WindowAggregate) and agg.tiled else None  # type: ignore[return-value]


def stream_table(f: Feature) -> str:
    """The table the stream writes for a feature (tiles for sliding windows)."""
    return f"{f.name}_tiles_stream" if hop_of(f) else f"{f.name}_stream"


def time_columns(f: Feature) -> list[str]:
    """The feature's time columns: window or session bounds, update times."""
    return [c.name for c in f.columns if c.clickhouse.startswith("DateTime64")]


def first_time_column(f: Feature) -> str:
    """The column that dates a row (window or session start, or the update time)."""
    return time_columns(f)[0]


def replacing_version(f: Feature) -> str:
    """The version column of a per-user table: the newest row of a key wins."""
    return f.columns[-1].name  # updated_at / last_event_time


def day_column(f: Feature) -> str:
    """The column a row's day comes from: window or session start, update time, or as_of."""
    if f.layer == "batch":
        return "as_of"
    return replacing_version(f) if f.updating else first_time_column(f)


def tables_of(f: Feature) -> tuple[str, ...]:
    """The tables holding a feature's rows: stream and batch tables, or the batch feature's own."""
    return (stream_table(f), f"{f.name}_batch") if f.layer == "stream" else (f.name,)


def objects_of(f: Feature) -> tuple[list[str], list[str]]:
    """A feature's ClickHouse tables and the views over them (cold views, tiles view, serving view)."""
    tables = list(tables_of(f))
    views = [cold_view(t) for t in tables] if f.windowed else []
    if f.layer == "stream":
        views += [f"{f.name}_stream"] if hop_of(f) else []
        views.append(f.name)
    return tables, views


def feature_tables(settings: Settings) -> dict[str, Feature]:
    """Every table holding a feature's rows, by name: stream and batch tables, and the 30-day tables."""
    repo = load_features(settings)
    return {t: f for f in (*repo.stream, *repo.batch) for t in tables_of(f)}


def tiered_tables(settings: Settings) -> dict[str, Feature]:
    """The tables whose days can move to the cold tier: the day-partitioned window tables."""
    return {t: f for t, f in feature_tables(settings).items() if f.windowed}


def cold_view(table: str) -> str:
    """The view over a tiered table's cold days (tiering keeps it current; empty until then)."""
    return f"{table}_cold"


def structure(f: Feature) -> str:
    """The table's columns as a ClickHouse structure, quoted for a string literal."""
    return ", ".join(f"`{c.name}` {c.clickhouse}" for c in f.columns).replace("'", "\\'")


def no_cold_days(f: Feature) -> str:
    """What a cold view selects while its table has no cold day: no rows, the columns plus `dt`."""
    cols = ", ".join(f"`{c.name}`" for c in f.columns)
    return f"SELECT {cols}, toDate(0) AS dt FROM null('{structure(f)}')"


def _engine(f: Feature) -> str:
    order = ", ".join(f.order_key)
    if f.updating:
        return f"ReplacingMergeTree({replacing_version(f)}) ORDER BY ({order})"
    return (
        f"ReplacingMergeTree ORDER BY ({order}) PARTITION BY toDate({first_time_column(f)}) "
        "SETTINGS allow_nullable_key = 1"
    )


# online against offline (batch/serving_consistency.py): one row per feature and run, with
# these counts of the day's logged values
SERVING_CONSISTENCY = "serving_consistency"
SERVING_COUNTS = (
    "values",
    "equal",
    "served_not_offline",
    "offline_not_served",
    "value_mismatches",
    "explained_in_flight",
    "explained_stale",
    "unexplained",
)


def table_ddl(settings: Settings) -> list[str]:
    """The CREATE statements of every table, idempotent; a cold view is created empty once."""
    db = settings.clickhouse.database
    counts = ", ".join(f"{c} UInt64" for c in SERVING_COUNTS)
    out = [
        f"CREATE TABLE IF NOT EXISTS {db}.reconciled_days (feature String, day Date, rows UInt64, "
        "complete UInt8, gaps String, reconciled_at DateTime64(3, 'UTC')) "
        "ENGINE = ReplacingMergeTree(reconciled_at) ORDER BY (feature, day)",
        f"CREATE TABLE IF NOT EXISTS {db}.dq_results (run_id String, checked_at DateTime64(3, 'UTC'), day Date, "
        "check LowCardinality(String), feature LowCardinality(String), passed UInt8, "
        "severity LowCardinality(String), message String, metrics Map(String, Float64), sample Array(String)) "
        "ENGINE = MergeTree ORDER BY (day, check, feature, checked_at) PARTITION BY toYYYYMM(day)",
        f"CREATE TABLE IF NOT EXISTS {db}.{SERVING_CONSISTENCY} (run_id String, checked_at DateTime64(3, 'UTC'), "
        f"day Date, feature LowCardinality(String), requests UInt64, {counts}, "
        "equal_rate Float64, unexplained_rate Float64, smape Nullable(Float64), worst_users Array(String)) "
        "ENGINE = MergeTree ORDER BY (day, feature, checked_at) PARTITION BY toYYYYMM(day)",
    ]
    for table, f in feature_tables(settings).items():
        out += feature_table_ddl(db, table, f)
    return out


def feature_table_ddl(db: str, table: str, f: Feature) -> list[str]:
    """One feature table's CREATE, idempotent, and its cold view's when it is tiered."""
    cols = ", ".join(f"`{c.name}` {c.clickhouse}" for c in f.columns)
    if f.layer == "batch":
        engine = f"ReplacingMergeTree ORDER BY ({', '.join(f.order_key)}) PARTITION BY as_of"
    else:
        engine = _engine(f)
    out = [f"CREATE TABLE IF NOT EXISTS {db}.{table} ({cols}) ENGINE = {engine}"]
    if f.windowed:
        out.append(f"CREATE VIEW IF NOT EXISTS {db}.{cold_view(table)} AS {no_cold_days(f)}")
    return out
