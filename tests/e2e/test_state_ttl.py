"""State TTL for real: a cart left alone longer than the TTL is forgotten. Flink's state
TTL counts processing time, so the test waits in real time (TTL set to 3.6 s)."""

from __future__ import annotations

import signal
import subprocess
import time

import orjson

from common.kafka import ensure_topics, producer
from common.redis_store import get_redis
from common.services import local_services
from tests.conftest import cli, isolated, shared_env

T0 = 1_767_225_600_000


def wait_for(fn, what: str, job: subprocess.Popen, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while not fn():
        assert job.poll() is None, job.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_cart_state_expires_after_ttl(tmp_path, shared_kafka):
    s, env = isolated(tmp_path / "home", LAMBDA_FEATURES_STREAM__STATE_TTL_HOURS="0.001", **shared_env(shared_kafka))
    job = None
    try:
        for svc in local_services(s):
            svc.start()
        ensure_topics(s, [s.kafka.events_topic], s.kafka.partitions)
        job = cli(["stream", "run", "--start", "earliest"], env)
        p = producer(s)
        r = get_redis(s)

        def send(item: int, price: float, t: int) -> None:
            e = {
                "event_id": f"e{item}",
                "user_id": 1,
                "item_id": item,
                "price": price,
                "event_type": "cart",
                "event_time": t,
            }
            p.produce(s.kafka.events_topic, orjson.dumps(e), key=b"1")
            p.flush(10)

        send(1, 10.0, T0)
        send(2, 1.0, T0 + 1000)
        wait_for(lambda: r.hget("user:1", "cart_amount") == "11.00", "cart 11.00 online", job)
        time.sleep(8)  # more than the TTL without activity
        send(3, 5.0, T0 + 2000)
        wait_for(lambda: r.hget("user:1", "cart_amount") != "11.00", "the next update", job)
        assert r.hget("user:1", "cart_amount") == "5.00"  # 16.00 had the state not expired
    finally:
        if job and job.poll() is None:
            job.send_signal(signal.SIGTERM)
            job.wait(120)
        for svc in local_services(s):
            svc.stop()
