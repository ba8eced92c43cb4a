"""ClickHouse access through clickhouse-connect: a server when configured, else the local
chDB service over $LAMBDA_FEATURES_HOME/clickhouse. The schema is in warehouse/."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from common.errors import PlatformError
from common.settings import Settings

_clients: dict[str, Any] = {}
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


def close_clients() -> None:
    """Close every client of this process (the local service keeps running)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def row_checksum(columns: Iterable[str]) -> str:
    """An order-free checksum of whole rows, as a SQL aggregate: the sum of each row's hash. The
    row is hashed as one tuple because cityHash64 of a NULL argument is NULL, which `sum` skips;
    a tuple's hash keeps its NULLs and tells them from 0 or ''."""
    return f"sum(cityHash64(tuple({', '.join(f'`{c}`' for c in columns)})))"
