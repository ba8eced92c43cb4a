"""ClickHouse access through clickhouse-connect: a server when configured, else the local
chDB service over $LAMBDA_FEATURES_HOME/clickhouse. All DDL of the platform lives here."""

from __future__ import annotations

import threading
from typing import Any

from common.errors import PlatformError
from common.settings import Settings
from features.definitions import BATCH_FEATURES, STREAM_FEATURES, Feature, Hop, WindowAggregate

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def local_url(settings: Settings) -> str:
    """Where the local chDB service answers (when no server url is set)."""
    return f"http://127.0.0.1:{settings.clickhouse.local_port}"


def get_client(settings: Settings):  # -> clickhouse_connect.driver.Client
    """One client per target per process: the configured server, else the local chDB
    service (started here when it is not running, and left running for other processes)."""
    import clickhouse_connect

    from common.services import clickhouse_service

    target = settings.clickhouse.url or local_url(settings)
    with _lock:
        if not settings.clickhouse.url and clickhouse_service(settings).start() and target in _clients:
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


def _tiles_view(db: str, f: Feature, hop: Hop) -> str:
    """Sliding windows from tiles: a tile starting at t is in the windows starting at
    t - k*slide for k in 0..size/slide-1."""
    measures = [m.name for m in f.aggregation.measures]  # type: ignore[union-attr]
    keys = [c.name for c in f.columns if c.name not in ("window_start", "window_end", *measures)]
    inner = (
        f"SELECT {', '.join(keys)}, window_start - toIntervalSecond({hop.slide_s} * k) AS ws, {', '.join(measures)} "
        f"FROM {db}.{stream_table(f)} FINAL ARRAY JOIN range({hop.tiles_per_window}) AS k"
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


def first_time_column(f: Feature) -> str:
    """The column that dates a row (window or session start, or the update time)."""
    return next(c.name for c in f.columns if c.clickhouse.startswith("DateTime64"))


def _serving_view(db: str, f: Feature) -> str:
    """`<name>`: batch rows for reconciled days and stream rows for the others; for a
    per-user value, the newer of the two (batch on a tie)."""
    cols = ", ".join(f"`{c.name}`" for c in f.columns)
    stream_final = "" if stream_table(f) != f"{f.name}_stream" else " FINAL"
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
        f"CREATE OR REPLACE VIEW {db}.{f.name} AS SELECT {cols} FROM {db}.{f.name}_batch FINAL UNION ALL "
        f"SELECT {cols} FROM {db}.{f.name}_stream{stream_final} WHERE {day} NOT IN ({reconciled})"
    )


def ddl(settings: Settings) -> list[str]:
    """Every CREATE statement of the platform, idempotent."""
    db = settings.clickhouse.database
    out = [
        f"CREATE DATABASE IF NOT EXISTS {db}",
        f"CREATE TABLE IF NOT EXISTS {db}.reconciled_days (feature String, day Date, rows UInt64, "
        "complete UInt8, gaps String, reconciled_at DateTime64(3, 'UTC')) "
        "ENGINE = ReplacingMergeTree(reconciled_at) ORDER BY (feature, day)",
    ]
    for f in STREAM_FEATURES:
        cols = ", ".join(f"`{c.name}` {c.clickhouse}" for c in f.columns)
        out.append(f"CREATE TABLE IF NOT EXISTS {db}.{stream_table(f)} ({cols}) ENGINE = {_engine(f)}")
        out.append(f"CREATE TABLE IF NOT EXISTS {db}.{f.name}_batch ({cols}) ENGINE = {_engine(f)}")
        agg = f.aggregation
        if isinstance(agg, WindowAggregate) and isinstance(agg.window, Hop):
            out.append(_tiles_view(db, f, agg.window))
        out.append(_serving_view(db, f))
    for f in BATCH_FEATURES:
        cols = ", ".join(f"`{c.name}` {c.clickhouse}" for c in f.columns)
        out.append(
            f"CREATE TABLE IF NOT EXISTS {db}.{f.name} ({cols}) ENGINE = ReplacingMergeTree "
            f"ORDER BY ({', '.join(f.order_key)}) PARTITION BY as_of"
        )
    return out


def create_tables(settings: Settings) -> None:
    client = get_client(settings)
    for stmt in ddl(settings):
        client.command(stmt)


def close_clients() -> None:
    """Close every client of this process (the local service keeps running)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
