"""The 30-day batch features on a hand-written archive with known answers (real Spark,
chDB and Redis)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import orjson

from common.clickhouse import get_client
from common.redis_store import PUBLISHED_KEY, get_redis
from common.services import local_services
from tests.conftest import run_batch
from tests.support.archive import at, write_archive

D = date(2026, 3, 31)
ROLLING_REPO = Path(__file__).resolve().parents[1] / "feature_repos" / "rolling.py"


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


def lake(settings, name: str, day: date, folder: str = "features") -> list[tuple]:
    """A feature's lake rows as of `day` (or a partial's rows with folder="partials"), sorted."""
    import pyarrow.parquet as pq

    from common.lake import as_of_dir, partial_dir

    rows = pq.read_table((as_of_dir if folder == "features" else partial_dir)(settings, name, day)).to_pylist()
    return sorted(tuple(sorted(r.items())) for r in rows)


def mixed_events(first: date, days: int, seed: int = 7) -> list[dict]:
    """Purchases, clicks and logins of a few users over `days` days; brands, items and
    prices sometimes null."""
    import random

    rng = random.Random(seed)
    out = []
    for k in range(days):
        for _ in range(rng.randint(1, 12)):  # every day archived
            kind = rng.choice(["purchase", "purchase", "click", "login"])
            e = {"user_id": rng.randint(1, 5), "event_type": kind, "event_time": at(first + timedelta(days=k), 0)}
            e["event_time"] += rng.randint(0, 86_399_999)
            if kind != "login":
                e |= {"item_id": rng.randint(1, 6), "brand": rng.choice(["acme", "globex", "hooli", None])}
                e["price"] = rng.choice([None, 1.25, 10.0, 3.33])
            out.append(e)
    return out


def test_partials_equal_rescan_and_a_rerun_day_replaces_its_partial(settings):
    """Every 30-day measure (tests/feature_repos/rolling.py), merged from daily partials,
    equals a rescan of the 30 days' events, bit for bit, the doubles of the moments too."""
    settings = settings.model_copy(update={"feature_repo": ROLLING_REPO})
    first = D - timedelta(days=34)
    events = mixed_events(first, 35)
    write_archive(settings, [e | {"qty": i % 4 or None} if "price" in e else e for i, e in enumerate(events)])
    names = ("top_brands_30d", "purchase_stats_30d", "spend_30d")

    def features_30d(day: date, *flags: str) -> dict[str, list]:
        p = run_batch(settings, "features-30d", "--date", day.isoformat(), "--no-publish", *flags)
        assert p.returncode == 0, p.stdout + p.stderr
        return {n: lake(settings, n, day) for n in names} | {"out": " ".join(p.stdout.split())}

    prev = D - timedelta(days=1)
    merged = features_30d(prev)
    assert "daily partials computed for 30 day(s)" in merged.pop("out")
    assert merged == {k: v for k, v in features_30d(prev, "--rescan").items() if k != "out"}
    assert all(merged[n] for n in names)
    spend = [dict(r) for r in merged["spend_30d"]]
    assert any(r["var_units"] for r in spend) and any(r["sd_price"] for r in spend)
    assert any(r["first_brand"] for r in spend) and any(r["last_units"] for r in spend)
    # as of D: only D's partial is new, D-29..D-1 are reused
    merged = features_30d(D)
    assert "daily partials computed for 1 day(s)" in merged.pop("out")
    assert merged == {k: v for k, v in features_30d(D, "--rescan").items() if k != "out"}
    # a day reconciled again after more of its events were archived: its partial is replaced
    x = D - timedelta(days=3)
    before = lake(settings, "top_brands_30d", x, "partials")
    write_archive(settings, [buy(9, "wonka", x, 3, 2.5), buy(9, "wonka", x, 4, 2.5)])
    p = run_batch(settings, "reconcile", "--date", x.isoformat())
    assert p.returncode == 0, p.stdout + p.stderr
    after = lake(settings, "top_brands_30d", x, "partials")
    assert set(after) - set(before) == {(("brand", "wonka"), ("purchases", 2), ("user_id", 9))}
    merged = features_30d(D)
    assert "daily partials computed" not in merged.pop("out")  # reconcile already refreshed it
    assert merged == {k: v for k, v in features_30d(D, "--rescan").items() if k != "out"}
    assert {dict(r)["user_id"]: dict(r) for r in merged["purchase_stats_30d"]}[9]["purchases"] == 2


def test_stale_partial_is_recomputed_when_its_archive_changes(settings):
    """Late events archived for a day after its partial was computed make that partial stale."""
    write_archive(settings, mixed_events(D - timedelta(days=2), 3))
    assert run_batch(settings, "features-30d", "--date", D.isoformat(), "--no-publish").returncode == 0
    write_archive(settings, [buy(9, "wonka", D - timedelta(days=1))])
    p = run_batch(settings, "features-30d", "--date", D.isoformat(), "--no-publish")
    assert p.returncode == 0 and "daily partials computed for 1 day(s)" in " ".join(p.stdout.split()), p.stdout
    assert (("as_of", D), ("brand", "wonka"), ("purchases", 1), ("rank", 1), ("user_id", 9)) in lake(
        settings, "top_brands_30d", D
    )


def test_no_publish_leaves_redis_empty_and_publish_fills_it_identically(settings):
    write_archive(settings, mixed_events(D - timedelta(days=5), 6))
    try:
        for svc in local_services(settings):
            svc.start()
        r = get_redis(settings)

        def snapshot() -> dict:
            return {k: (r.hgetall(k), r.ttl(k) > 0) for k in sorted(r.keys("*"))}

        assert run_batch(settings, "features-30d", "--date", D.isoformat()).returncode == 0
        published = snapshot()
        newest = published.pop(PUBLISHED_KEY)  # the newest as-of day per feature, without a TTL
        assert newest == ({"top_brands_30d": D.isoformat(), "purchase_stats_30d": D.isoformat()}, False)
        fields = {"top_brands_30d", "top_brands_30d:as_of", "purchase_stats_30d", "purchase_stats_30d:as_of"}
        assert published and all(
            set(v) == fields and v["top_brands_30d:as_of"] == D.isoformat() for v, _ in published.values()
        )
        r.flushdb()
        assert run_batch(settings, "features-30d", "--date", D.isoformat(), "--no-publish").returncode == 0
        assert r.dbsize() == 0
        p = run_batch(settings, "publish", "--date", D.isoformat())
        assert p.returncode == 0, p.stdout + p.stderr
        assert f"for {len(published)} users" in p.stdout
        assert snapshot() == published | {PUBLISHED_KEY: newest}
    finally:
        for svc in local_services(settings):
            svc.stop()
