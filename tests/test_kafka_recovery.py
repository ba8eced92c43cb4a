"""A stream job on Kafka, killed with SIGKILL mid-stream and started again, resumes from
its checkpoint: every sink ends equal to an uninterrupted run's (real Tansu, Flink,
Redis, chDB; the job runs as `lambda-features stream run` in its own process group).

The jobs are unbounded, as in production: a bounded KafkaSource never finishes after a
restore (FLINK-31006, fix not released). A tick event far ahead in every partition fires
every window; a run is stopped (SIGTERM, a clean cancel) once the archive holds every
event and the online store every user."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from common.clickhouse import close_clients, get_client
from common.kafka import ensure_topics, producer
from common.redis_store import get_redis
from common.services import local_services
from common.settings import Settings
from features.adapters import to_json
from features.definitions import STREAM_FEATURES
from features.generator import GeneratorConfig, generate
from tests.conftest import cli, isolated
from warehouse.tables import stream_table

pytestmark = pytest.mark.slow
EVENTS = 150_000
TABLES = tuple(stream_table(f) for f in STREAM_FEATURES)


def make_settings(home: Path) -> tuple[Settings, dict[str, str]]:
    return isolated(
        home, LAMBDA_FEATURES_STREAM__CHECKPOINT_INTERVAL_MS="1000", LAMBDA_FEATURES_STREAM__ARCHIVE_ROLLOVER_S="2"
    )


TICK_USER = 0


def produce(settings: Settings) -> int:
    """The same events into this home's broker, then one tick per partition; returns the
    number of distinct users."""
    for svc in local_services(settings):
        svc.start()
    ensure_topics(settings, [settings.kafka.events_topic], settings.kafka.partitions)
    p = producer(settings)
    cfg = GeneratorConfig(seed=11, late=0.0, events_per_second=100)
    users = set()
    last = 0
    # no lateness: Flink does not checkpoint watermarks, so a restored job cannot tell
    # which replayed events an uninterrupted one would have seen as late
    for e in generate(cfg, EVENTS):
        users.add(e["user_id"])
        last = max(last, e["event_time"])
        p.produce(settings.kafka.events_topic, to_json(e), key=str(e["user_id"]).encode())
        p.poll(0)
    for part in range(settings.kafka.partitions):
        tick = {"event_id": f"tick-{part}", "user_id": TICK_USER, "event_type": "login", "event_time": last + 7_200_000}
        p.produce(settings.kafka.events_topic, orjson.dumps(tick), partition=part)
    assert p.flush(60) == 0
    return len(users | {TICK_USER})


def stream_run(env: dict[str, str]) -> subprocess.Popen:
    return cli(["stream", "run", "--start", "earliest"], env)


def archived(settings: Settings) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in settings.archive_dir.rglob("part-*"))


def run_until_caught_up(settings: Settings, env: dict[str, str], users: int) -> bytes:
    """Run the stream job until every event is archived and every user online, then stop it."""
    job = stream_run(env)
    r = None
    deadline = time.monotonic() + 600
    while True:
        assert job.poll() is None, job.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the stream job did not catch up within 10 minutes"
        if r is None:
            try:
                r = get_redis(settings)
            except Exception:
                pass
        if r is not None and archived(settings) >= EVENTS + settings.kafka.partitions and r.dbsize() >= users:
            break
        time.sleep(0.5)
    time.sleep(4)  # let the last checkpoint's feature changes reach both stores
    job.send_signal(signal.SIGTERM)
    out, _ = job.communicate(timeout=120)
    assert job.returncode == 0, out.decode()[-3000:]
    return out


def snapshot(settings: Settings) -> dict:
    """Every sink's final content."""
    r = get_redis(settings)
    online = {k: r.hgetall(k) for k in r.scan_iter("user:*", count=1000)}
    for svc in local_services(settings):
        svc.stop()
    ch = get_client(settings)
    tables = {t: sorted(ch.query(f"SELECT * FROM features.{t} FINAL").result_rows, key=repr) for t in TABLES}
    close_clients()
    archived: Counter = Counter()
    for part in settings.archive_dir.rglob("part-*"):
        for line in part.read_bytes().splitlines():
            archived[orjson.loads(line)["event_id"]] += 1
    return {"online": online, "tables": tables, "archive": archived}


def test_sigkill_mid_stream_then_restore_equals_uninterrupted(tmp_path):
    killed, env_k = make_settings(tmp_path / "killed")
    clean, env_c = make_settings(tmp_path / "clean")
    try:
        users = produce(killed)
        assert produce(clean) == users

        job = stream_run(env_k)
        ckpt_root = Path(killed.checkpoint_uri.removeprefix("file://"))
        deadline = time.monotonic() + 300
        while not list(ckpt_root.glob("*/*/chk-*/_metadata")) or not archived(killed):
            assert job.poll() is None, job.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
            time.sleep(0.2)
        assert archived(killed) < EVENTS, "the job got too far before it could be killed mid-stream"
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()

        out = run_until_caught_up(killed, env_k, users)
        assert b"restoring lambda-features-stream" in out
        run_until_caught_up(clean, env_c, users)

        a, b = snapshot(killed), snapshot(clean)
        assert sum(a["archive"].values()) == EVENTS + killed.kafka.partitions
        assert a["archive"] == b["archive"]  # each event archived exactly once
        for t in TABLES:
            assert a["tables"][t] == b["tables"][t], t
        assert len(a["tables"]["uv_1m_stream"]) > 20  # the tick fired the windows
        assert a["online"] == b["online"]
    finally:
        for s in (killed, clean):
            for svc in local_services(s):
                svc.stop()
        close_clients()
