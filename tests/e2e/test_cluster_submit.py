"""`lambda-features stream submit` against a real Flink session cluster (the wheel's own
jobmanager.sh/taskmanager.sh on 127.0.0.1), with `stream load` filling the stores."""

from __future__ import annotations

import signal
import time

import orjson

from common.clickhouse import close_clients, get_client
from common.kafka import ensure_topics, producer
from common.redis_store import get_redis
from common.services import local_services
from features.adapters import to_json
from features.generator import GeneratorConfig, generate
from tests.conftest import cli, free_port, isolated, shared_env
from tests.support.flink_cluster import rest, session_cluster


def test_submit_to_session_cluster(tmp_path, shared_kafka):
    s, env = isolated(
        tmp_path / "home", LAMBDA_FEATURES_STREAM__CHECKPOINT_INTERVAL_MS="2000", **shared_env(shared_kafka)
    )
    events = list(generate(GeneratorConfig(seed=3, late=0.0), 3000))
    users = {e["user_id"] for e in events}
    loader = None
    try:
        for svc in local_services(s):
            svc.start()
        ensure_topics(s, [s.kafka.events_topic], s.kafka.partitions)
        p = producer(s)
        for e in events:
            p.produce(s.kafka.events_topic, to_json(e), key=str(e["user_id"]).encode())
        last = max(e["event_time"] for e in events)
        for part in range(s.kafka.partitions):  # fire every window
            tick = {"user_id": 0, "event_type": "login", "event_time": last + 3_600_000, "event_id": f"t{part}"}
            p.produce(s.kafka.events_topic, orjson.dumps(tick), partition=part)
        assert p.flush(30) == 0

        with session_cluster(tmp_path / "flink", free_port(), free_port()) as port:
            submit = cli(["stream", "submit", "--jobmanager", f"127.0.0.1:{port}", "--start", "earliest"], env)
            out = submit.communicate(timeout=300)[0].decode()
            assert submit.returncode == 0, out
            job_id = out.split("job ")[-1].split()[0]
            loader = cli(["stream", "load"], env)
            r = get_redis(s)
            deadline = time.monotonic() + 300
            while r.dbsize() < len(users) + 1:
                assert loader.poll() is None, loader.stdout.read().decode()[-2000:]
                assert rest(port, f"/jobs/{job_id}")["state"] == "RUNNING"
                assert time.monotonic() < deadline, f"{r.dbsize()} of {len(users) + 1} users online"
                time.sleep(1)
            time.sleep(3)
            rest(port, f"/jobs/{job_id}?mode=cancel", method="PATCH")
            loader.send_signal(signal.SIGTERM)
            loader.wait(60)
            assert loader.returncode == 0
        last_seen = {}
        for e in events:
            last_seen[e["user_id"]] = max(last_seen.get(e["user_id"], 0), e["event_time"])
        assert all(int(r.hget(f"user:{u}", "last_event_time")) == t for u, t in last_seen.items())
        for svc in local_services(s):
            svc.stop()
        uv = get_client(s).query("SELECT sum(events) FROM features.uv_1m_stream FINAL").result_rows[0][0]
        assert uv == len(events)  # every window fired, each event counted once
    finally:
        if loader and loader.poll() is None:
            loader.kill()
        for svc in local_services(s):
            svc.stop()
        close_clients()
