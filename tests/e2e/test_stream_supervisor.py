"""The stream supervisor on real local Flink: a stream job killed with SIGKILL is seen
dead by the sensor, and the run it requests restarts the job from its checkpoint."""

import os
import signal
import time

from dagster import build_sensor_context

from common.kafka import ensure_topics, producer
from common.services import local_services
from common.settings import load_settings
from features.adapters import to_json
from features.generator import GeneratorConfig, generate
from orchestration.definitions import build_definitions
from orchestration.instance import dagster_instance
from streaming.deployment import StreamDeployment


def _wait(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _produce(settings, count: int, seed: int) -> None:
    ensure_topics(settings, [settings.kafka.events_topic], settings.kafka.partitions)
    prod = producer(settings)
    for e in generate(GeneratorConfig(seed=seed), count):
        prod.produce(settings.kafka.events_topic, to_json(e), key=str(e["user_id"]).encode())
    prod.flush(30)


def test_supervisor_restarts_a_killed_stream_job_from_its_checkpoint(platform_env, monkeypatch):
    s = platform_env
    defs = build_definitions(s)
    instance = dagster_instance(s)
    deploy = defs.resolve_job_def("stream_deploy")
    sensor = defs.resolve_sensor_def("stream_supervisor")
    deployment = StreamDeployment(s)
    services = local_services(s)
    try:
        for svc in services:
            svc.start()
        _produce(s, 3000, seed=1)
        first = deploy.execute_in_process(instance=instance)
        assert first.success
        assert first.asset_materializations_for_node("stream_job")[0].metadata["action"].value == "started"
        checkpoint = _wait(lambda: deployment.status(with_lag=False).last_checkpoint, 120, "a checkpoint")
        pid = deployment.status(with_lag=False).pid

        os.killpg(pid, signal.SIGKILL)
        _wait(lambda: deployment.status(with_lag=False).state == "DEAD", 30, "the job to be seen dead")

        with build_sensor_context(instance=instance, definitions=defs, resources=defs.resources) as ctx:
            tick = sensor.evaluate_tick(ctx)
        assert len(tick.run_requests) == 1
        [observed] = tick.asset_events
        assert observed.metadata["state"].value == "DEAD"

        second = deploy.execute_in_process(instance=instance, tags=tick.run_requests[0].tags)
        assert second.success
        assert second.asset_materializations_for_node("stream_job")[0].metadata["action"].value == "restarted"
        status = deployment.status(with_lag=False)
        assert status.state == "RUNNING"
        assert status.pid != pid
        # restored from the killed job's checkpoints: the one the REST API reported, or a newer one
        restored = (status.restored_from or "").removeprefix("file:").lstrip("/")
        reported = checkpoint["path"].removeprefix("file:").lstrip("/")
        assert restored.rsplit("/chk-", 1)[0] == reported.rsplit("/chk-", 1)[0]
        assert int(restored.rsplit("-", 1)[1]) >= checkpoint["id"]

        _produce(s, 1000, seed=2)  # the restarted job keeps consuming
        _wait(lambda: deployment.status().kafka_lag == 0, 120, "the restarted job to catch up")
        with build_sensor_context(instance=instance, definitions=defs, resources=defs.resources) as ctx:
            assert not sensor.evaluate_tick(ctx).run_requests  # healthy: nothing to do

        # a changed definition: materializing redeploys through a savepoint
        monkeypatch.setenv("LAMBDA_FEATURES_STREAM__STATE_TTL_HOURS", "48")
        changed = build_definitions(load_settings())
        third = changed.resolve_job_def("stream_deploy").execute_in_process(instance=instance)
        meta = third.asset_materializations_for_node("stream_job")[0].metadata
        assert meta["action"].value == "redeployed"
        assert "savepoint-" in meta["savepoint"].value
        assert meta["restored from"].value == meta["savepoint"].value
        assert deployment.status(with_lag=False).state == "RUNNING"
    finally:
        deployment.stop(savepoint=False)
        for svc in services:
            svc.stop()
