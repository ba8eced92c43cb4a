"""--as-known-at matches online serving: what `lambda-features serve` answers for each user
after the stream job replayed events up to time T equals the training-set rows at T for the
same users. Events that arrive after T (late ones, by their archived arrival) change the
by-event-time rows only."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pyarrow.parquet as pq

from common.services import local_services
from features.adapters import to_json
from features.generator import GeneratorConfig, generate
from serving.online_features import iso_ms
from tests.conftest import free_port, isolated, shared_env
from tests.integration.test_training_set import run_spark, write_spine
from tests.support.archive import write_archive
from tests.support.pipeline import ms, run_pipeline
from tests.support.serving_env import server

STATE = ["cart_amount", "last_searches", "last_event_time"]


def served_row(features: dict) -> dict:
    """An API answer in the training set's shapes; NOT_FOUND is null, as in the training set."""
    cart, searches, last = (features[n]["value"] for n in STATE)
    return {"cart_amount": None if cart is None else Decimal(cart), "last_searches": searches, "last_event_time": last}


def training_row(row: dict) -> dict:
    return {
        "cart_amount": row["cart_amount"],
        "last_searches": row["last_searches__queries"],
        "last_event_time": None if row["last_event_time"] is None else iso_ms(ms(row["last_event_time"])),
    }


def test_as_known_at_equals_online_serving_at_t(tmp_path: Path, shared_kafka):
    settings, env = isolated(
        tmp_path / "home", LAMBDA_FEATURES_STREAM__CHECKPOINT_INTERVAL_MS="2000", **shared_env(shared_kafka)
    )
    try:
        _check(settings, env, tmp_path)
    finally:
        for svc in local_services(settings):
            svc.stop()


def _check(settings, env: dict[str, str], tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    cfg = GeneratorConfig(seed=5, users=6, items=30, events_per_second=1.0, start_ms=now - 15 * 60_000)
    events = list(generate(cfg, 600))  # 10 minutes of event time, ending 5 minutes ago
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(to_json(e) + b"\n" for e in events))
    started = int(time.time() * 1000)
    run_pipeline(settings, "jsonl", path)
    t = int(time.time() * 1000)  # T: every replayed event arrived before it, and Redis holds them all
    every = [*sorted({e["user_id"] for e in events}), 999_999]
    with server(env, free_port(), tmp_path / "serve.log") as served:  # the Redis of the replay, restarted
        answer = httpx.post(f"{served.url}/v1/features", json={"user_ids": every, "features": STATE}).json()
    online = {u["user_id"]: served_row(u["features"]) for u in answer["users"]}
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

    spine = write_spine(tmp_path / "spine.parquet", [{"user_id": u, "ts": t} for u in every])
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
    assert known == online and online[999_999] == dict.fromkeys(STATE)
    assert all(online[u]["last_event_time"] for u in users)
    by_time = {r["user_id"]: training_row(r) for r in pq.read_table(out["time"]).to_pylist()}
    for user in users:  # the late cart and search count by event time, the login after T in neither
        assert by_time[user]["last_searches"][0] == "late"
        assert by_time[user]["last_event_time"] == iso_ms(t - 500)
        assert by_time[user]["cart_amount"] == (online[user]["cart_amount"] or 0) + Decimal("7.00")
