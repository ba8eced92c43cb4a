"""What the catalogue looks like now: rows, the newest change, and how far the CDC relay is
behind the binlog (for `catalog status` and the Dagster asset `catalog`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson

from catalog.relay import binlog_number, position_file, saved_position
from common.catalog_db import TABLE, connect
from common.errors import PlatformError
from common.settings import Settings


def binlog_behind(logs: list[tuple[str, int]], file: str, pos: int) -> int:
    """Bytes of binlog after (file, pos), given every binlog file and its size."""
    n = binlog_number(file)
    return sum(size - (pos if binlog_number(f) == n else 0) for f, size in logs if binlog_number(f) >= n)


def observe(settings: Settings) -> dict[str, object]:
    """rows, last_change (newest updated_at, UTC), binlog_behind_bytes and cdc_lag_s (0 when the
    relay has confirmed everything; else the seconds since its last confirmation), relay_position."""
    conn = connect(settings, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*), MAX(updated_at) FROM {TABLE}")
            rows, newest = cur.fetchone()
            cur.execute("SHOW BINARY LOGS")
            logs = [(r[0], int(r[1])) for r in cur.fetchall()]
    finally:
        conn.close()
    out: dict[str, object] = {
        "rows": int(rows),
        "last_change": newest.replace(tzinfo=UTC).isoformat() if newest else None,
        "topic": settings.catalog.topic,
    }
    saved = saved_position(settings) if settings.catalog.relay else None
    if saved:
        behind = binlog_behind(logs, *saved)
        saved_at = datetime.fromisoformat(orjson.loads(position_file(settings).read_bytes())["saved_at"])
        out |= {
            "relay_position": f"{saved[0]}:{saved[1]}",
            "binlog_behind_bytes": behind,
            "cdc_lag_s": round((datetime.now(UTC) - saved_at).total_seconds(), 1) if behind else 0.0,
        }
    return out


def wait_relayed(settings: Settings, timeout_s: float = 120) -> None:
    """Wait until the relay has confirmed every change in the binlog (nothing behind)."""
    deadline = time.monotonic() + timeout_s
    while (seen := observe(settings)).get("binlog_behind_bytes") != 0:
        if time.monotonic() > deadline:
            raise PlatformError(
                f"the catalogue relay did not relay every change within {timeout_s:.0f} s: {seen}",
                f"see {settings.run_dir / 'catalog-relay.log'} and `lambda-features catalog status`",
            )
        time.sleep(0.2)
