"""--as-known-at matches online serving: the per-user values the stream job left in Redis
after replaying events up to time T equal the training-set rows at T for the same users.
Events that arrive after T (late ones, by their archived arrival) change the by-event-time
rows only. (Redis hashes stand in for the online HTTP API here.)"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from features.adapters import to_json
from features.generator import GeneratorConfig, generate
from tests.archive import write_archive
from tests.pipeline import ms, run_pipeline
from tests.test_training_set import run_spark, write_spine

pytestmark = pytest.mark.slow
STATE = ["cart_amount", "last_searches", "last_event_time"]


def online_row(hash_: dict[str, str]) -> dict:
    """A Redis hash in the training set's shapes."""
    cart = hash_.get("cart_amount")
    searches = hash_.get("last_searches")
    last = hash_.get("last_event_time")
    return {
        "cart_amount": None if cart is None else Decimal(cart),
        "last_searches": None if searches is None else orjson.loads(searches),
        "last_event_time": None if last is None else int(last),
    }


def training_row(row: dict) -> dict:
    return {
        "cart_amount": row["cart_amount"],
        "last_searches": row["last_searches__queries"],
        "last_event_time": None if row["last_event_time"] is None else ms(row["last_event_time"]),
    }


def test_as_known_at_equals_online_store_at_t(settings, tmp_path: Path):
    now = int(time.time() * 1000)
    cfg = GeneratorConfig(seed=5, users=6, items=30, events_per_second=1.0, start_ms=now - 15 * 60_000)
    events = list(generate(cfg, 600))  # 10 minutes of event time, ending 5 minutes ago
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(to_json(e) + b"\n" for e in events))
    started = int(time.time() * 1000)
    run = run_pipeline(settings, "jsonl", path)
    t = int(time.time() * 1000)  # T: every replayed event arrived before it, and Redis holds them all
    files = settings.archive_dir.rglob("part-*")
    archived = [orjson.loads(line) for p in files for line in p.read_bytes().splitlines()]
    assert len(archived) == len(events) and all(started <= e["arrived_at"] <= t for e in archived)

    # after T: events dated before T that arrive late, and events dated after T
    users = sorted({e["user_id"] for e in events})
    later = []
    for k, user in enumerate(users):
        base = {"user_id": user, "src_part": 1, "late": True, "arrived_at": t + 1000 + k}
        cart = {"event_type": "cart", "item_id": 999, "price": 7.0, "event_time": t - 1000}
        later.append({**base, "src_off": 3 * k, **cart})
        later.append({**base, "src_off": 3 * k + 1, "event_type": "search", "query": "late", "event_time": t - 500})
        later.append({**base, "src_off": 3 * k + 2, "event_type": "login", "event_time": t + 10, "late": False})
    write_archive(settings, later)

    spine = write_spine(tmp_path / "spine.parquet", [{"user_id": u, "ts": t} for u in [*users, 999_999]])
    out = {mode: tmp_path / f"{mode}.parquet" for mode in ("known", "time")}
    run_spark(
        settings,
        tmp_path,
        {
            "builds": [
                {"spine": str(spine), "features": STATE, "out": str(out["known"]), "as_known_at": True},
                {"spine": str(spine), "features": STATE, "out": str(out["time"]), "as_known_at": False},
            ]
        },
    )
    known = {r["user_id"]: training_row(r) for r in pq.read_table(out["known"]).to_pylist()}
    online = {u: online_row(run.online.get(f"user:{u}", {})) for u in [*users, 999_999]}
    assert known == online
    by_time = {r["user_id"]: training_row(r) for r in pq.read_table(out["time"]).to_pylist()}
    for user in users:  # the late cart and search count by event time, the login after T in neither
        assert by_time[user]["last_searches"][0] == "late"
        assert by_time[user]["last_event_time"] == t - 500
        assert by_time[user]["cart_amount"] == (online[user]["cart_amount"] or 0) + Decimal("7.00")
