"""What the local chDB service costs the feature loader: rows/s of `raw_insert` JSONEachRow
(the loader's call) through the service over HTTP vs. chDB opened in-process, into the
platform's own `category_clicks_1h_tiles_stream` table, at two batch sizes.

    .venv/bin/python bench/chdb_insert_bench.py [--rows 400000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stream_bench import hardware  # noqa: E402
from common.clickhouse import close_clients, get_client  # noqa: E402
from common.services import clickhouse_service  # noqa: E402
from common.settings import load_settings  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from warehouse.schema import create_tables, ddl  # noqa: E402

TABLE = "features.category_clicks_1h_tiles_stream"
COLUMNS = ["user_id", "window_start", "window_end", "category_id", "clicks"]


def batches(rows: int, size: int) -> list[bytes]:
    """Loader-shaped JSON rows (Flink's timestamp text), `size` per batch."""
    out, t0 = [], 1_767_225_600
    for b in range(0, rows, size):
        lines = []
        for i in range(b, min(rows, b + size)):
            start = t0 + (i % 2000) * 300
            lines.append(
                orjson.dumps(
                    {
                        "user_id": i % 50_000,
                        "window_start": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start)),
                        "window_end": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + 300)),
                        "category_id": i % 97,
                        "clicks": 1 + i % 3,
                    }
                )
            )
        out.append(b"\n".join(lines))
    return out


def rate(client, data: list[bytes], rows: int) -> float:
    started = time.monotonic()
    for block in data:
        client.raw_insert(
            TABLE, COLUMNS, insert_block=block, fmt="JSONEachRow", settings={"date_time_input_format": "best_effort"}
        )
    return rows / (time.monotonic() - started)


def measure(name: str, open_client: Callable[[], object], data: list[bytes], rows: int) -> float:
    client = open_client()
    rate(client, data[:2], 0)  # warm up: first parts, caches
    best = max(rate(client, data, rows) for _ in range(2))
    print(f"  {name:<34} {best:>12,.0f} rows/s")
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=400_000)
    args = ap.parse_args()
    print(f"hardware: {hardware()}")
    with tempfile.TemporaryDirectory() as tmp:
        s = load_settings(home=Path(tmp) / "svc", clickhouse={"local_port": free_port()}, monitoring={"enabled": False})
        import clickhouse_connect

        inproc = clickhouse_connect.get_client(dsn=f"chdb://{Path(tmp) / 'inproc'}")
        for stmt in ddl(s):
            inproc.command(stmt)
        create_tables(s)
        try:
            for size in (5_000, 50_000):  # 50k = the loader's default flush_rows
                data = batches(args.rows, size)
                print(f"raw_insert JSONEachRow, {args.rows:,} rows in batches of {size:,}:")
                a = measure("chDB in-process (chdb://)", lambda: inproc, data, args.rows)
                b = measure("local service (HTTP, 127.0.0.1)", lambda: get_client(s), data, args.rows)
                print(f"  service / in-process: {b / a:.2f}")
        finally:
            inproc.close()
            close_clients()
            clickhouse_service(s).stop()


if __name__ == "__main__":
    main()
