"""ClickHouse access through clickhouse-connect: a server when configured, else the local
chDB service over $LAMBDA_FEATURES_HOME/clickhouse. All DDL of the platform lives here."""

from __future__ import annotations

import threading
from typing import Any

from common.errors import PlatformError
from common.settings import Settings
from features.definitions import BATCH_FEATURES, STREAM_FEATURES, Feature, Hop, WindowAggregate

_clients: dict[str, Any] = {}
TIER_MANIFEST = "tiered_partitions"  # tiering's record of every move, see tiering/
_lock = threading.Lock()


def local_url(settings: Settings) -> str:
    """Where the local chDB service answers (when no server url is set)."""
    return f"http://127.0.0.1:{settings.clickhouse.local_port}"


def get_client(settings: Settings, start: bool = True):  # -> clickhouse_connect.driver.Client
    """One client per target per process: the configured server, else the local chDB
    service (started here when it is not running, and left running for other processes;
    `start=False` leaves a stopped service stopped, as a monitor must)."""
    import clickhouse_connect

    from common.services import clickhouse_service, ensure_running

    target = settings.clickhouse.url or local_url(settings)
    with _lock:
        if (
            start
            and not settings.clickhouse.url
            and ensure_running(clickhouse_service(settings))
            and target in _clients
        ):
            _clients.pop(target).close()  # the service was restarted: drop the old pool
        if target not in _clients:
            try:
                # no session: one client serves the loader's and the caller's threads at once
                opts = {"autogenerate_session_id": False}
                if settings.clickhouse.url:
                    _clients[target] = clickhouse_connect.get_client(dsn=settings.clickhouse.url, **opts)
                else:
                    port = settings.clickhouse.local_port
                    _clients[target] = clickhouse_connect.get_client(
                        host="127.0.0.1", port=port, compress=False, send_receive_timeout=3600, **opts
                    )
            except Exception as e:  # the driver raises many kinds; all mean "cannot reach it"
                raise PlatformError(
                    f"cannot open ClickHouse at {target}: {e}",
                    "check LAMBDA_FEATURES_CLICKHOUSE__URL, or unset it to use the embedded chDB",
                ) from None
        return _clients[target]


def _version_column(f: Feature) -> str:
    return f.columns[-1].name  # updated_at / last_event_time


def _engine(f: Feature) -> str:
    order = ", ".join(f.order_key)
    if f.updating:
        return f"ReplacingMergeTree({_version_column(f)}) ORDER BY ({order})"
    return (
        f"ReplacingMergeTree ORDER BY ({order}) PARTITION BY toDate({first_time_column(f)}) "
        "SETTINGS allow_nullable_key = 1"
    )


def stream_table(f: Feature) -> str:
    """The table the stream writes for a feature (tiles for sliding windows)."""
    agg = f.aggregation
    if isinstance(agg, WindowAggregate) and isinstance(agg.window, Hop):
        return f"{f.name}_tiles_stream"
    return f"{f.name}_stream"


def _tiles_view(db: str, f: Feature, hop: Hop, tiles: str) -> str:
    """Sliding windows from tiles (`tiles`: their rows as FINAL gives them): a tile starting
    at t is in the windows starting at t - k*slide for k in 0..size/slide-1."""
    measures = [m.name for m in f.aggregation.measures]  # type: ignore[union-attr]
    keys = [c.name for c in f.columns if c.name not in ("window_start", "window_end", *measures)]
    inner = (
        f"SELECT {', '.join(keys)}, window_start - toIntervalSecond({hop.slide_s} * k) AS ws, {', '.join(measures)} "
        f"FROM {tiles} ARRAY JOIN range({hop.tiles_per_window}) AS k"
    )
    select = []
    for c in f.columns:
        if c.name == "window_start":
            select.append("ws AS window_start")
        elif c.name == "window_end":
            select.append(f"ws + toIntervalSecond({hop.size_s}) AS window_end")
        elif c.name in measures:
            select.append(f"toInt64(sum({c.name})) AS {c.name}")
        else:
            select.append(c.name)
    return (
        f"CREATE OR REPLACE VIEW {db}.{f.name}_stream AS SELECT {', '.join(select)} "
        f"FROM ({inner}) GROUP BY {', '.join(keys)}, ws"
    )


def time_columns(f: Feature) -> list[str]:
    """The feature's time columns: window or session bounds, update times."""
    return [c.name for c in f.columns if c.clickhouse.startswith("DateTime64")]


def first_time_column(f: Feature) -> str:
    """The column that dates a row (window or session start, or the update time)."""
    return time_columns(f)[0]


def _serving_view(db: str, f: Feature, batch: str, stream: str) -> str:
    """`<name>`: batch rows for reconciled days and stream rows for the others; for a
    per-user value, the newer of the two (batch on a tie). `batch`/`stream`: the sources."""
    cols = ", ".join(f"`{c.name}`" for c in f.columns)
    if f.updating:
        keys = ", ".join(f.keys)
        both = (
            f"SELECT {cols}, 1 AS from_batch FROM {db}.{f.name}_batch FINAL UNION ALL "
            f"SELECT {cols}, 0 AS from_batch FROM {db}.{f.name}_stream FINAL"
        )
        return (
            f"CREATE OR REPLACE VIEW {db}.{f.name} AS SELECT {cols} FROM ({both}) "
            f"ORDER BY {_version_column(f)} DESC, from_batch DESC LIMIT 1 BY {keys}"
        )
    reconciled = f"SELECT day FROM {db}.reconciled_days FINAL WHERE feature = '{f.name}'"
    day = f"toDate({first_time_column(f)})"
    return (
        f"CREATE OR REPLACE VIEW {db}.{f.name} AS SELECT {cols} FROM {batch} UNION ALL "
        f"SELECT {cols} FROM {stream} WHERE {day} NOT IN ({reconciled})"
    )


def tiered_tables() -> dict[str, Feature]:
    """The tables tiering moves, by name: the day-partitioned window tables, stream and batch."""
    return {t: f for f in STREAM_FEATURES if f.windowed for t in (stream_table(f), f"{f.name}_batch")}


def hot_days_sql(db: str, table: str) -> str:
    """The days a table holds in MergeTree (its active partitions)."""
    return f"SELECT toDate(partition) FROM system.parts WHERE database = '{db}' AND table = '{table}' AND active"


def _source(settings: Settings, f: Feature, table: str, cold_days: list) -> str:
    """A table's rows as FINAL returns them, plus its cold days read back from object storage;
    a day still (or again) in MergeTree is served from there only."""
    db = settings.clickhouse.database
    if not cold_days:
        return f"{db}.{table} FINAL"
    from tiering.layout import cold_reader

    cols = ", ".join(f"`{c.name}`" for c in f.columns)
    return (
        f"(SELECT {cols} FROM {db}.{table} FINAL UNION ALL SELECT {cols} FROM "
        f"{cold_reader(settings, table, cold_days, f)} WHERE dt NOT IN ({hot_days_sql(db, table)}))"
    )


def ddl(settings: Settings, cold: dict[str, list] | None = None) -> list[str]:
    """Every CREATE statement of the platform, idempotent. `cold`: the tiered days per table,
    which the views read back from object storage."""
    db = settings.clickhouse.database
    cold = cold or {}
    out = [
        f"CREATE DATABASE IF NOT EXISTS {db}",
        f"CREATE TABLE IF NOT EXISTS {db}.reconciled_days (feature String, day Date, rows UInt64, "
        "complete UInt8, gaps String, reconciled_at DateTime64(3, 'UTC')) "
        "ENGINE = ReplacingMergeTree(reconciled_at) ORDER BY (feature, day)",
        f"CREATE TABLE IF NOT EXISTS {db}.{TIER_MANIFEST} (`table` String, day Date, state LowCardinality(String), "
        "rows UInt64, checksum UInt64, bytes UInt64, objects Array(String), uri String, "
        "updated_at DateTime64(6, 'UTC')) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (`table`, day)",
    ]
    for f in STREAM_FEATURES:
        cols = ", ".join(f"`{c.name}` {c.clickhouse}" for c in f.columns)
        out.append(f"CREATE TABLE IF NOT EXISTS {db}.{stream_table(f)} ({cols}) ENGINE = {_engine(f)}")
        out.append(f"CREATE TABLE IF NOT EXISTS {db}.{f.name}_batch ({cols}) ENGINE = {_engine(f)}")
        batch = _source(settings, f, f"{f.name}_batch", cold.get(f"{f.name}_batch", []))
        stream = _source(settings, f, stream_table(f), cold.get(stream_table(f), []))
        agg = f.aggregation
        if isinstance(agg, WindowAggregate) and isinstance(agg.window, Hop):
            out.append(_tiles_view(db, f, agg.window, stream))
            stream = f"{db}.{f.name}_stream"
        out.append(_serving_view(db, f, batch, stream))
    for f in BATCH_FEATURES:
        cols = ", ".join(f"`{c.name}` {c.clickhouse}" for c in f.columns)
        out.append(
            f"CREATE TABLE IF NOT EXISTS {db}.{f.name} ({cols}) ENGINE = ReplacingMergeTree "
            f"ORDER BY ({', '.join(f.order_key)}) PARTITION BY as_of"
        )
    out.append(_dq_results(db))
    return out


def _dq_results(db: str) -> str:
    """One row per data-quality check run (dq_checks.record), for BI."""
    return (
        f"CREATE TABLE IF NOT EXISTS {db}.dq_results (run_id String, checked_at DateTime64(3, 'UTC'), day Date, "
        "check LowCardinality(String), feature LowCardinality(String), passed UInt8, "
        "severity LowCardinality(String), message String, metrics Map(String, Float64), sample Array(String)) "
        "ENGINE = MergeTree ORDER BY (day, check, feature, checked_at) PARTITION BY toYYYYMM(day)"
    )


def create_tables(settings: Settings) -> None:
    """Create what is missing, and (re)build the views over the hot and the tiered days."""
    client = get_client(settings)
    for stmt in ddl(settings, cold_days(settings)):
        client.command(stmt)


def cold_days(settings: Settings) -> dict[str, list]:
    """The days tiering moved to object storage, per table, from its manifest."""
    client = get_client(settings)
    db = settings.clickhouse.database
    if not client.command(f"EXISTS TABLE {db}.{TIER_MANIFEST}"):
        return {}
    rows = client.query(
        f"SELECT `table`, arraySort(groupArray(day)) FROM {db}.{TIER_MANIFEST} FINAL "
        "WHERE state = 'cold' GROUP BY `table`"
    ).result_rows
    return {t: days for t, days in rows}


def create_named_collection(settings: Settings, name: str, params: dict[str, str]) -> None:
    """(Re)create a named collection, e.g. the object-store location and credentials that
    the views' s3() calls use, so no secret appears in a view's definition."""
    client = get_client(settings)
    quoted = ", ".join(f"{k} = '{_escape(v)}'" for k, v in params.items())
    client.command(f"DROP NAMED COLLECTION IF EXISTS {name}")
    client.command(f"CREATE NAMED COLLECTION {name} AS {quoted}")


def create_restore_table(settings: Settings, table: str) -> str:
    """An empty copy of a table, to stage a restored day before swapping it in atomically."""
    client = get_client(settings)
    db = settings.clickhouse.database
    client.command(f"DROP TABLE IF EXISTS {db}.{table}_restore")
    client.command(f"CREATE TABLE {db}.{table}_restore AS {db}.{table}")
    return f"{db}.{table}_restore"


def drop_restore_table(settings: Settings, table: str) -> None:
    get_client(settings).command(f"DROP TABLE IF EXISTS {settings.clickhouse.database}.{table}_restore")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def close_clients() -> None:
    """Close every client of this process (the local service keeps running)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
