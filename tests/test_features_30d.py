"""The 30-day batch features on a hand-written archive with known answers (real Spark,
chDB and Redis)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import orjson
import pytest

from common.clickhouse import get_client
from common.redis_store import get_redis
from common.services import local_services
from tests.archive import at, write_archive
from tests.conftest import run_batch

pytestmark = pytest.mark.slow
D = date(2026, 3, 31)


def buy(user, brand, day, item=1, price=10.0):
    return {
        "user_id": user,
        "event_type": "purchase",
        "brand": brand,
        "item_id": item,
        "price": price,
        "event_time": at(day),
    }


def test_known_answers(settings):
    d = lambda k: D - timedelta(days=k)  # noqa: E731
    write_archive(
        settings,
        [
            buy(1, "acme", d(0), 1, 10.0),
            buy(1, "acme", d(1), 1, 10.0),
            buy(1, "globex", d(2), 2, 0.1),
            buy(1, "globex", d(29), 3, 0.2),
            buy(1, "initech", d(3), 4, None),
            buy(1, "hooli", d(4), 5, 1.0),
            buy(1, "hooli", d(30), 5, 1.0),  # outside the 30 days
            buy(1, None, d(5), 6, 2.0),  # no brand: not a brand, still a purchase
            {"user_id": 2, "event_type": "click", "item_id": 9, "event_time": at(d(0))},
            {"user_id": 2, "event_type": "login", "event_time": at(d(0), 1)},
            {"user_id": 3, "event_type": "purchase", "brand": "acme", "item_id": 1, "event_time": at(d(31))},
        ],
    )
    try:
        for svc in local_services(settings):
            svc.start()
        for _ in range(2):  # a re-run replaces the day
            p = run_batch(settings, "features-30d", "--date", D.isoformat())
            assert p.returncode == 0, p.stdout + p.stderr
        assert "top_brands_30d as of 2026-03-31: 3 rows" in p.stdout and "purchase_stats_30d as of" in p.stdout
        ch = get_client(settings)
        top = ch.query("SELECT user_id, rank, brand, purchases FROM features.top_brands_30d ORDER BY rank").result_rows
        # acme 2, globex 2 (ties by name), then hooli 1 and initech 1: hooli by name
        assert top == [(1, 1, "acme", 2), (1, 2, "globex", 2), (1, 3, "hooli", 1)]
        stats = ch.query(
            "SELECT user_id, purchases, gmv, distinct_items, active_days "
            "FROM features.purchase_stats_30d ORDER BY user_id"
        ).result_rows
        assert stats == [(1, 7, Decimal("23.30"), 6, 7), (2, 0, Decimal("0.00"), 0, 1)]
        r = get_redis(settings)
        assert orjson.loads(r.hget("user:1", "top_brands_30d")) == ["acme", "globex", "hooli"]
        assert orjson.loads(r.hget("user:1", "purchase_stats_30d"))["gmv"] == "23.30"
        assert r.hget("user:3", "purchase_stats_30d") is None
    finally:
        for svc in local_services(settings):
            svc.stop()
