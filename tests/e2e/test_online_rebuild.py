"""The online store rebuilt after Redis lost its data, on a real Redis, broker and loader
process (`stream load --only online`), without a Flink job: the changelog rows are produced to
the feature topics as the job writes them, and the 30-day features published from lake Parquet.

- the running loader notices the loss by itself (its marker gone) and reads the topics again;
  its owner publishes the 30-day features again;
- `stream rebuild-online --feature F` hands the rebuild to the running loader;
- with no loader running, `stream rebuild-online` runs one itself, and publishes the rest.
"""

from __future__ import annotations

import signal
from datetime import date

import orjson
import pytest

from common.kafka import producer
from common.redis_store import get_redis, marker_key, rebuild_request_key
from common.services import clickhouse_service, kafka_service, redis_service
from common.settings import Settings
from features.ecommerce import CART_AMOUNT, LAST_EVENT_TIME, LAST_SEARCHES
from streaming.runner import ensure_feature_topics
from streaming.sql import compile_feature
from tests.conftest import cli, isolated
from tests.support.serving_env import publish_batch, stream_rows
from tests.support.stream_drill import wait_for

USERS = 300
DAY = date(2026, 11, 20)


def produce_changes(s: Settings) -> None:
    """Three rounds of changes per user, as the job's upsert sinks write them (keyed by user)."""
    p = producer(s)
    for round_ in range(3):
        for user in range(1, USERS + 1):
            t = 1_700_000_000_000 + round_ * 60_000 + user
            for f, row in stream_rows(user, t, cart=f"{user % 50}.{round_}5", searches=[f"q{user}", f"r{round_}"]):
                topic = s.kafka.features_topic_prefix + compile_feature(f)[1].output
                p.produce(topic, orjson.dumps(row), key=orjson.dumps({"user_id": user}))
    assert p.flush(60) == 0


def online(s: Settings) -> dict:
    r = get_redis(s)
    return {k: r.hgetall(k) for k in r.scan_iter(f"{s.redis.key_prefix}*", count=1000)}


def complete(s: Settings):
    """Every user's hash with its three stream and two batch fields (and their times but
    last_event_time's, the value itself)."""
    now = online(s)
    return now if len(now) == USERS and all(len(h) == 9 for h in now.values()) else None


def run(args: list[str], env: dict[str, str]) -> str:
    proc = cli(args, env)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out.decode()[-3000:]
    return " ".join(out.decode().split())  # the console wraps lines


@pytest.fixture
def platform(tmp_path):
    s, env = isolated(tmp_path / "home", LAMBDA_FEATURES_MONITORING__ENABLED="false")
    services = [redis_service(s), kafka_service(s), clickhouse_service(s)]
    for svc in services:
        svc.start()
    try:
        ensure_feature_topics(s)
        produce_changes(s)
        brands = {u: [f"b{u % 7}", f"b{u % 5}"] for u in range(1, USERS + 1)}
        stats = {u: (u % 9, f"{u}.50", u % 4, 1 + u % 3) for u in range(1, USERS + 1)}
        publish_batch(s, DAY, brands, stats)
        yield s, env
    finally:
        for svc in services:
            svc.stop()


def test_loader_rebuilds_a_redis_that_lost_everything_and_the_command_does_on_demand(platform):
    s, env = platform
    loader = cli(["stream", "load", "--only", "online"], env)
    try:
        expected = wait_for(lambda: complete(s), 120, "the loader to write every user", lambda: None)
        redis = get_redis(s)
        assert redis.hgetall(marker_key(s))  # the offsets Redis holds, per partition

        redis.flushall()  # what a restart without its data leaves
        wait_for(lambda: complete(s) == expected, 120, "the rebuild", lambda: None)
        done = orjson.loads(redis.get(rebuild_request_key(s) + ":done"))
        assert done["reason"] == "lost" and done["keys"] == USERS

        # on demand, one feature, by the running loader: its field written again, the rest kept
        for key in expected:
            redis.hdel(key, LAST_SEARCHES.name)
        out = run(["stream", "rebuild-online", "--feature", LAST_SEARCHES.name], env)
        assert "by the running online loader" in out and f"{USERS:,} users' keys rewritten" in out, out
        assert online(s) == expected
    finally:
        loader.send_signal(signal.SIGTERM)
        loaded, _ = loader.communicate(timeout=120)
    assert loader.returncode == 0, loaded.decode()[-3000:]
    assert b"Redis lost changes the loader had written (marker gone" in loaded

    # no loader running: the command runs one, and publishes the 30-day features again
    redis.flushall()
    out = run(["stream", "rebuild-online"], env)
    assert "an online loader of this command" in out and f"republished top_brands_30d as of {DAY}" in out, out
    assert online(s) == expected


def test_rebuild_online_names_an_unknown_feature(platform):
    s, env = platform
    proc = cli(["stream", "rebuild-online", "--feature", "no_such_feature"], env)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert b"no online feature no_such_feature" in out and CART_AMOUNT.name.encode() in out
    assert LAST_EVENT_TIME.name.encode() in out
