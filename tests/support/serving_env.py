"""For the serving tests and benchmark: online-store contents written through the writers'
own code (the loader's field encoding, the batch publication from lake Parquet), and a
`lambda-features serve` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx

from batch.publish import publish_online
from common.redis_store import get_redis, write_hashes
from common.settings import Settings
from features.ecommerce import BATCH_FEATURES, CART_AMOUNT, LAST_EVENT_TIME, LAST_SEARCHES
from streaming.loader import online_fields
from streaming.sql import compile_feature

REPO = Path(__file__).resolve().parents[2]


def iso(ms: int) -> str:
    """An epoch-ms time as the stream's changelog (JSON, ISO-8601) and the API write it."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def stream_rows(user: int, t_ms: int, cart: str | None = None, searches: list[str] | None = None) -> list[tuple]:
    """Changelog rows (feature, row) of one user's per-user stream features as of t_ms."""
    rows: list[tuple] = [(LAST_EVENT_TIME, {"user_id": user, "last_event_time": iso(t_ms)})]
    if cart is not None:
        rows.append((CART_AMOUNT, {"user_id": user, "cart_amount": float(cart), "updated_at": iso(t_ms)}))
    if searches is not None:
        rows.append((LAST_SEARCHES, {"user_id": user, "queries": searches, "updated_at": iso(t_ms)}))
    return rows


def write_stream(settings: Settings, rows: Iterable[tuple]) -> None:
    """What the loader writes for these changelog rows, by the loader's own encoding."""
    queries = {}
    by_key: dict[str, dict[str, str]] = {}
    for f, row in rows:
        q = queries.get(f.name) or queries.setdefault(f.name, compile_feature(f)[1])
        for (key, field), value in online_fields(settings, q, row).items():
            by_key.setdefault(key, {})[field] = value
    redis = get_redis(settings)
    write_hashes(redis, settings, by_key)


def publish_batch(settings: Settings, day: date, brands: dict[int, list[str]], stats: dict[int, tuple]) -> None:
    """Lake Parquet of both 30-day features as of `day`, then the real publication.
    stats: user -> (purchases, gmv, distinct_items, active_days)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    top = [
        {"user_id": u, "rank": r, "brand": b, "purchases": 10 - r}
        for u, bs in brands.items()
        for r, b in enumerate(bs, start=1)
    ]
    measures = ("purchases", "gmv", "distinct_items", "active_days")
    rows = {
        "top_brands_30d": top,
        "purchase_stats_30d": [
            {"user_id": u, **dict(zip(measures, s, strict=True)), "gmv": Decimal(s[1])} for u, s in stats.items()
        ],
    }
    for f in BATCH_FEATURES:
        folder = settings.lake_features_dir / f.name / f"as_of={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows[f.name]), folder / "part-0.parquet")
        (folder / "_SUCCESS").touch()
    publish_online(settings, day)


def _env(settings_env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LAMBDA_FEATURES_")} | settings_env


@dataclass
class Served:
    url: str
    pid: int


@contextmanager
def server(env: dict[str, str], port: int, log: Path) -> Iterator[Served]:
    """`lambda-features serve` on 127.0.0.1:port with the platform settings `env`, until the
    block ends (SIGTERM to its process group, by PID). The serving log is off unless `env`
    turns it on (it would start a broker)."""
    env = {"LAMBDA_FEATURES_SERVING__LOG_SAMPLE_RATE": "0"} | env | {"LAMBDA_FEATURES_SERVING__PORT": str(port)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve"],
            cwd=REPO,
            env=_env(env),
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"serve exited with {proc.returncode}: {log.read_text()}"
            assert time.monotonic() < deadline, f"serve did not answer in 60 s: {log.read_text()}"
            try:
                httpx.get(url + "/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield Served(url, proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
