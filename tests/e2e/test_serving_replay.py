"""After a replay through the real stream job and the real 30-day batch job, the API
serves exactly what the stores hold: every user's stream values and event times equal the
rows in ClickHouse's stream tables, and the 30-day values the rows as of the day."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import httpx

from common.clickhouse import get_client
from common.redis_store import get_redis
from common.services import local_services
from features.adapters import to_json
from features.generator import GeneratorConfig, generate
from tests.conftest import cli, free_port, isolated, run_batch, shared_env
from tests.support.pipeline import ms
from tests.support.serving_env import iso, server

EVENTS = 4000


def test_api_equals_the_stores_after_a_replay(tmp_path, shared_kafka):
    today = datetime.now(UTC).date()
    day = today - timedelta(days=1)  # events over yesterday: every value PRESENT today
    start_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    cfg = GeneratorConfig(seed=7, users=300, start_ms=start_ms, events_per_second=EVENTS / 86_400 * 1.05)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(to_json(e) + b"\n" for e in generate(cfg, EVENTS)))
    settings, env = isolated(
        tmp_path / "home", LAMBDA_FEATURES_STREAM__CHECKPOINT_INTERVAL_MS="2000", **shared_env(shared_kafka)
    )
    try:
        replay = cli(["replay", "--format", "jsonl", str(events), "--keep-services"], env)
        out = replay.communicate(timeout=900)[0].decode()
        assert replay.returncode == 0, out[-5000:]
        batch = run_batch(settings, "features-30d", "--date", day.isoformat())
        assert batch.returncode == 0, batch.stdout[-5000:] + batch.stderr[-5000:]

        stores = _stores(settings, day)
        users = sorted(int(k.split(":")[1]) for k in get_redis(settings).scan_iter("user:*", count=1000))
        assert len(users) > 100 and stores["top_brands_30d"] and stores["cart_amount"]
        with server(env, free_port(), tmp_path / "serve.log") as served:
            url = served.url
            got = {u: httpx.get(f"{url}/v1/users/{u}/features").json()["features"] for u in users}
            many = httpx.post(f"{url}/v1/features", json={"user_ids": users, "features": list(stores)}).json()
        for u in users:
            expected = {name: stores[name].get(u, _not_found(name)) for name in stores}
            assert got[u] == expected, u
        assert [x["features"] for x in many["users"]] == [got[u] for u in users]
        statuses = {e["status"] for f in got.values() for e in f.values()}
        assert statuses == {"PRESENT", "NOT_FOUND"}
    finally:
        for svc in local_services(settings):
            svc.stop()


def _not_found(name: str) -> dict:
    when = "as_of" if name.endswith("_30d") else "event_time"
    return {"status": "NOT_FOUND", "value": None, when: None}


def _stores(settings, day: date) -> dict[str, dict[int, dict]]:
    """The entries the API should give, per feature and user, from ClickHouse."""
    ch = get_client(settings)
    db = settings.clickhouse.database

    def rows(sql: str) -> list[tuple]:
        return ch.query(sql.format(db=db)).result_rows

    out: dict[str, dict[int, dict]] = {}
    present = "PRESENT"
    out["cart_amount"] = {
        u: {"status": present, "value": f"{amount:.2f}", "event_time": iso(ms(t))}
        for u, amount, t in rows("SELECT user_id, cart_amount, updated_at FROM {db}.cart_amount_stream FINAL")
    }
    out["last_searches"] = {
        u: {"status": present, "value": list(q), "event_time": iso(ms(t))}
        for u, q, t in rows("SELECT user_id, queries, updated_at FROM {db}.last_searches_stream FINAL")
    }
    out["last_event_time"] = {
        u: {"status": present, "value": iso(ms(t)), "event_time": iso(ms(t))}
        for u, t in rows("SELECT user_id, last_event_time FROM {db}.last_event_time_stream FINAL")
    }
    brands: dict[int, list[str]] = defaultdict(list)
    for u, b in rows(
        f"SELECT user_id, brand FROM {{db}}.top_brands_30d FINAL WHERE as_of = '{day}' ORDER BY user_id, rank"
    ):
        brands[u].append(b)
    out["top_brands_30d"] = {u: {"status": present, "value": bs, "as_of": day.isoformat()} for u, bs in brands.items()}
    stats_sql = (
        "SELECT user_id, purchases, gmv, distinct_items, active_days FROM {db}.purchase_stats_30d FINAL "
        f"WHERE as_of = '{day}'"
    )
    out["purchase_stats_30d"] = {
        u: {
            "status": present,
            "value": {"purchases": p, "gmv": f"{g:.2f}", "distinct_items": d, "active_days": a},
            "as_of": day.isoformat(),
        }
        for u, p, g, d, a in rows(stats_sql)
    }
    return out
