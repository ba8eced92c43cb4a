"""A stream job on Kafka, killed with SIGKILL mid-stream and started again, resumes from
its checkpoint, and each feature loader, killed alone mid-stream, is restarted and resumes
from its own offsets: every sink ends equal to the drills' uninterrupted run's (real Kafka, Flink,
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
from collections.abc import Callable
from pathlib import Path

from common.clickhouse import close_clients
from common.kafka import bootstrap, partitions_of
from common.redis_store import get_redis
from common.services import local_services, process_running
from common.settings import Settings
from tests.conftest import shared_env
from tests.support.stream_drill import (
    DRILL_EVENTS,
    DRILL_SEED,
    TICK_USER,
    archived,
    assert_same_sinks,
    events,
    loader_pid,
    make_settings,
    produce,
    snapshot,
    stream_run,
    wait_caught_up,
)


def kill_loader(job: subprocess.Popen, role: str) -> None:
    """SIGKILL the job's loader of that role and wait until the job started a new one."""
    deadline = time.monotonic() + 120
    while (old := loader_pid(job, role)) is None:
        assert job.poll() is None and time.monotonic() < deadline, f"no {role} loader process"
        time.sleep(0.2)
    os.kill(old, signal.SIGKILL)
    while loader_pid(job, role) in (None, old):
        assert job.poll() is None, job.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, f"the {role} loader was not restarted"
        time.sleep(0.2)


def changes_written(settings: Settings) -> int:
    """Messages on the last_event_time topic (one change per event at most)."""
    from confluent_kafka import Consumer, TopicPartition

    topic = settings.kafka.features_topic_prefix + "last_event_time"
    c = Consumer({"bootstrap.servers": bootstrap(settings), "group.id": "test-probe"})
    try:
        parts = [TopicPartition(topic, p) for p in partitions_of(settings, topic)]
        return sum(c.get_watermark_offsets(tp, timeout=10)[1] for tp in parts)
    finally:
        c.close()


def kill_each_loader_mid_stream(settings: Settings) -> Callable[[subprocess.Popen], None]:
    """Once the restored job writes feature changes again, SIGKILL the online loader, and
    once it was restarted, the OLAP loader."""

    def kill(job: subprocess.Popen) -> None:
        before = changes_written(settings)
        deadline = time.monotonic() + 300
        while changes_written(settings) == before:
            assert job.poll() is None, job.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the restored job wrote no feature change"
            time.sleep(0.2)
        kill_loader(job, "online")
        kill_loader(job, "olap")

    return kill


def run_until_caught_up(
    settings: Settings, env: dict[str, str], users: int, meanwhile: Callable[[subprocess.Popen], None]
) -> bytes:
    """Run the stream job (doing `meanwhile` once it started) until every event is archived,
    every user online and both loaders committed every feature change, then stop it."""
    job = stream_run(env)
    meanwhile(job)

    def alive() -> None:
        assert job.poll() is None, job.stdout.read().decode()[-3000:]

    wait_caught_up(settings, DRILL_EVENTS, alive)
    assert get_redis(settings).dbsize() >= users
    loaders = [loader_pid(job, role) for role in ("online", "olap")]
    job.send_signal(signal.SIGTERM)
    out, _ = job.communicate(timeout=120)
    assert job.returncode == 0, out.decode()[-3000:]
    assert None not in loaders and not any(process_running(p) for p in loaders)  # stopped with the job
    return out


def test_sigkill_mid_stream_then_restore_equals_uninterrupted(uninterrupted, tmp_path, shared_kafka):
    killed, env_k = make_settings(tmp_path / "killed", **shared_env(shared_kafka))
    evs = events(DRILL_EVENTS, DRILL_SEED)
    users = len({e["user_id"] for e in evs} | {TICK_USER})
    try:
        produce(killed, evs, tick_after=max(e["event_time"] for e in evs))

        job = stream_run(env_k)
        ckpt_root = Path(killed.checkpoint_uri.removeprefix("file://"))
        deadline = time.monotonic() + 300
        while not list(ckpt_root.glob("*/*/chk-*/_metadata")) or not archived(killed):
            assert job.poll() is None, job.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
            time.sleep(0.2)
        assert archived(killed) < DRILL_EVENTS, "the job got too far before it could be killed mid-stream"
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()

        out = run_until_caught_up(killed, env_k, users, kill_each_loader_mid_stream(killed))
        assert b"restoring lambda-features-stream" in out

        assert_same_sinks(snapshot(killed), uninterrupted, evs, killed.kafka.partitions)
    finally:
        for svc in local_services(killed):
            svc.stop()
        close_clients()
