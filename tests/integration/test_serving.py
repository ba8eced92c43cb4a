"""The online feature API against a real redis-server and a real `lambda-features serve`
process: values and statuses from what the writers store, bad requests, the API key, and
Redis stopped or stuck."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, date, datetime, timedelta

import httpx
import orjson
import pytest

from common.redis_store import get_redis
from common.services import redis_service
from features.ecommerce import FEATURES
from serving.online_features import ONLINE
from serving.status import Bounds, batch_status, stream_status
from tests.conftest import free_port, isolated
from tests.support.serving_env import iso, publish_batch, server, stream_rows, write_stream

NOW_MS = int(time.time() * 1000)
HOUR = 3_600_000
TODAY = datetime.now(UTC).date()
D = TODAY - timedelta(days=1)  # the newest as-of day published
STATS_1 = (3, "30.10", 2, 2)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """A server over a Redis the test started and filled:
    user 1: every feature, fresh; user 2: stream values 8 days old (past the 7-day state TTL),
    batch values as of D-1 only (the batch as of D no longer has them); user 3: nothing;
    user 4: a login a minute ago and purchase stats as of D, no brands."""
    home = tmp_path_factory.mktemp("serving") / "home"
    settings, env = isolated(home)
    redis = redis_service(settings)
    redis.start()
    try:
        write_stream(
            settings,
            stream_rows(1, NOW_MS - HOUR, cart="12.50", searches=["red shoes", "shoes"])
            + stream_rows(2, NOW_MS - 8 * 24 * HOUR, cart="0.30", searches=["tent"])
            + stream_rows(4, NOW_MS - 60_000),
        )
        publish_batch(
            settings, D - timedelta(days=1), {1: ["old"], 2: ["hooli"]}, {1: (1, "1.00", 1, 1), 2: (5, "9.99", 4, 3)}
        )
        publish_batch(settings, D, {1: ["acme", "globex"]}, {1: STATS_1, 4: (0, "0.00", 0, 1)})
        with server(env, free_port(), home / "serve.log") as served:
            url = served.url
            yield url, settings
    finally:
        redis.stop()


def stream(status, value, t_ms):
    return {"status": status, "value": value, "event_time": iso(t_ms)}


def batch(status, value, day):
    return {"status": status, "value": value, "as_of": day.isoformat()}


NOT_FOUND_STREAM = {"status": "NOT_FOUND", "value": None, "event_time": None}
NOT_FOUND_BATCH = {"status": "NOT_FOUND", "value": None, "as_of": None}
STATS = ("purchases", "gmv", "distinct_items", "active_days")


def test_every_feature_of_a_user(api):
    url, _ = api
    t1, t2, t4 = NOW_MS - HOUR, NOW_MS - 8 * 24 * HOUR, NOW_MS - 60_000
    got = {u: httpx.get(f"{url}/v1/users/{u}/features").json() for u in (1, 2, 3, 4)}
    assert got[1] == {
        "user_id": 1,
        "features": {
            "cart_amount": stream("PRESENT", "12.50", t1),
            "last_searches": stream("PRESENT", ["red shoes", "shoes"], t1),
            "last_event_time": stream("PRESENT", iso(t1), t1),
            "top_brands_30d": batch("PRESENT", ["acme", "globex"], D),
            "purchase_stats_30d": batch("PRESENT", dict(zip(STATS, STATS_1, strict=True)), D),
        },
    }
    assert got[2]["features"] == {
        "cart_amount": stream("STALE", "0.30", t2),
        "last_searches": stream("STALE", ["tent"], t2),
        "last_event_time": stream("STALE", iso(t2), t2),
        "top_brands_30d": batch("STALE", ["hooli"], D - timedelta(days=1)),
        "purchase_stats_30d": batch("STALE", dict(zip(STATS, (5, "9.99", 4, 3), strict=True)), D - timedelta(days=1)),
    }
    assert got[3]["features"] == {
        name: NOT_FOUND_STREAM if of.layer == "stream" else NOT_FOUND_BATCH for name, of in ONLINE.items()
    }
    assert got[4]["features"] == {
        "cart_amount": NOT_FOUND_STREAM,
        "last_searches": NOT_FOUND_STREAM,
        "last_event_time": stream("PRESENT", iso(t4), t4),
        "top_brands_30d": NOT_FOUND_BATCH,
        "purchase_stats_30d": batch("PRESENT", dict(zip(STATS, (0, "0.00", 0, 1), strict=True)), D),
    }


def test_many_users_some_features(api):
    url, _ = api
    r = httpx.post(
        f"{url}/v1/features",
        json={"user_ids": [4, 1, 3, 1], "features": ["top_brands_30d", "cart_amount", "top_brands_30d"]},
    )
    assert r.status_code == 200
    users = r.json()["users"]
    assert [u["user_id"] for u in users] == [4, 1, 3, 1]  # the order asked, duplicates kept
    assert [list(u["features"]) for u in users] == [["top_brands_30d", "cart_amount"]] * 4
    single = httpx.get(f"{url}/v1/users/1/features").json()["features"]
    assert users[1]["features"] == {k: single[k] for k in ("top_brands_30d", "cart_amount")}
    assert users[0]["features"]["top_brands_30d"] == NOT_FOUND_BATCH


def test_online_features_come_from_the_definitions():
    assert list(ONLINE) == [f.name for f in FEATURES if f.online_column]
    assert {n: of.layer for n, of in ONLINE.items()} == {
        "cart_amount": "stream",
        "last_searches": "stream",
        "last_event_time": "stream",
        "top_brands_30d": "batch",
        "purchase_stats_30d": "batch",
    }


def test_bad_requests(api):
    url, settings = api
    known = ", ".join(ONLINE)
    r = httpx.post(f"{url}/v1/features", json={"user_ids": [1], "features": ["cart_amount", "nope"]})
    assert r.status_code == 422 and f"unknown feature 'nope'; known: {known}" in r.text
    for bad in ("abc", "1.5", str(2**53)):
        r = httpx.get(f"{url}/v1/users/{bad}/features")
        assert r.status_code == 422 and "user_id" in r.text, bad
    for body in ({"user_ids": ["1"], "features": ["cart_amount"]}, {"user_ids": [], "features": ["cart_amount"]}):
        assert httpx.post(f"{url}/v1/features", json=body).status_code == 422
    too_many = list(range(settings.serving.max_users + 1))
    r = httpx.post(f"{url}/v1/features", json={"user_ids": too_many, "features": ["cart_amount"]})
    assert r.status_code == 422 and "at most 1000 items" in r.text
    big = b'{"user_ids": [' + b"1, " * settings.serving.max_body_bytes + b'1], "features": ["cart_amount"]}'
    r = httpx.post(f"{url}/v1/features", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "SERVING__MAX_BODY_BYTES" in r.json()["detail"]
    chunks = (big[i : i + 65536] for i in range(0, len(big), 65536))  # no Content-Length: chunked
    r = httpx.post(f"{url}/v1/features", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_corrupt_value_is_named(api):
    url, settings = api
    get_redis(settings).hset("user:77", mapping={"top_brands_30d": "[oops", "top_brands_30d:as_of": D.isoformat()})
    r = httpx.get(f"{url}/v1/users/77/features")
    assert r.status_code == 500 and r.json()["detail"].startswith("user 77, top_brands_30d:")
    assert httpx.get(f"{url}/v1/users/1/features").status_code == 200


def test_health_metrics_openapi(api):
    url, _ = api
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    spec = httpx.get(f"{url}/openapi.json").json()
    assert {"/v1/users/{user_id}/features", "/v1/features", "/health", "/metrics"} <= set(spec["paths"])
    httpx.get(f"{url}/v1/users/2/features")
    metrics = httpx.get(f"{url}/metrics").text
    assert 'lf_serving_requests_total{route="/v1/users/{user_id}/features",status="200"}' in metrics
    assert 'lf_serving_feature_values_total{feature="cart_amount",status="STALE"}' in metrics
    assert "lf_serving_request_seconds_bucket" in metrics and "lf_serving_redis_seconds_count" in metrics


def test_status_rules():
    now_s = datetime(2026, 3, 10, 12, tzinfo=UTC).timestamp()
    b = Bounds.at(now_s, stream_max_age_s=3600, batch_max_age_days=2)
    assert stream_status(str(int(now_s * 1000) - 3_600_000), b) == "PRESENT"
    assert stream_status(str(int(now_s * 1000) - 3_600_001), b) == "STALE"
    assert stream_status(None, b) == "STALE"  # written before the store kept event times
    assert batch_status("2026-03-08", None, b) == "PRESENT"
    assert batch_status("2026-03-07", None, b) == "STALE"  # the batch layer is behind
    assert batch_status("2026-03-09", "2026-03-09", b) == "PRESENT"
    assert batch_status("2026-03-08", "2026-03-09", b) == "STALE"  # a newer day published without the user
    assert batch_status(None, "2026-03-09", b) == "STALE"
    assert date.fromisoformat(b.batch_cutoff) == date(2026, 3, 8)


def test_api_key_and_own_redis(tmp_path):
    """Without REDIS__URL, serve starts the platform's redis-server and says so."""
    settings, env = isolated(tmp_path / "home", LAMBDA_FEATURES_SERVING__API_KEY="s3cret")
    try:
        with server(env, free_port(), tmp_path / "serve.log") as served:
            url = served.url
            assert httpx.get(f"{url}/v1/users/1/features").status_code == 401
            wrong = httpx.get(f"{url}/v1/users/1/features", headers={"X-API-Key": "nope"})
            assert wrong.status_code == 401 and "X-API-Key" in wrong.json()["detail"]
            r = httpx.get(f"{url}/v1/users/1/features", headers={"X-API-Key": "s3cret"})
            assert r.status_code == 200
            assert httpx.get(f"{url}/health").status_code == 200
            spec = httpx.get(f"{url}/openapi.json").json()
            assert "APIKeyHeader" in spec["components"]["securitySchemes"]
        log = " ".join((tmp_path / "serve.log").read_text().split())
        assert f"started the local redis on 127.0.0.1:{settings.redis.local_port}" in log
        assert redis_service(settings).pid() is not None  # it outlives serve
    finally:
        redis_service(settings).stop()


def test_redis_stuck_or_stopped_is_503(tmp_path):
    timeout_s = 0.5
    settings, env = isolated(tmp_path / "home", LAMBDA_FEATURES_SERVING__REDIS_TIMEOUT_S=str(timeout_s))
    redis = redis_service(settings)
    redis.start()
    try:
        write_stream(settings, stream_rows(1, NOW_MS, cart="1.00"))
        with server(env, free_port(), tmp_path / "serve.log") as served:
            url = served.url
            client = httpx.Client(base_url=url, timeout=timeout_s + 5)  # a hang would raise ReadTimeout
            assert client.get("/v1/users/1/features").status_code == 200
            pid = redis.pid()
            os.kill(pid, signal.SIGSTOP)  # stuck: connections open, no answers
            try:
                r = client.get("/v1/users/1/features")
                assert r.status_code == 503 and "is unavailable" in r.json()["detail"], r.text
                r = client.post("/v1/features", json={"user_ids": [1, 2], "features": ["cart_amount"]})
                assert r.status_code == 503
                assert client.get("/health").status_code == 503
            finally:
                os.kill(pid, signal.SIGCONT)
            assert client.get("/v1/users/1/features").json()["features"]["cart_amount"]["value"] == "1.00"
            redis.stop()  # stopped: connections refused
            r = client.get("/v1/users/1/features")
            assert r.status_code == 503 and "SERVING__REDIS_TIMEOUT_S" in r.json()["detail"]
            h = client.get("/health")
            assert h.status_code == 503 and h.json()["status"] == "unavailable"
            assert "lf_serving_redis_errors_total 3.0" in client.get("/metrics").text
    finally:
        redis.stop()


def test_user_hash_layout(api):
    """What the writers put in a hash: a value per feature and what dates it."""
    _, settings = api
    h = get_redis(settings).hgetall("user:1")
    assert h["cart_amount:event_time"] == str(NOW_MS - HOUR) and "last_event_time:event_time" not in h
    assert h["top_brands_30d:as_of"] == D.isoformat() and orjson.loads(h["top_brands_30d"]) == ["acme", "globex"]
    assert get_redis(settings).hgetall("lambda-features:published") == {
        "top_brands_30d": D.isoformat(),
        "purchase_stats_30d": D.isoformat(),
    }
