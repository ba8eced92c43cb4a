"""Chaos drills on real processes (Apache Kafka, Flink's local mini-cluster under `stream run`,
Redis, the ClickHouse service, the exporter and Prometheus), each while events keep flowing,
each ending with every sink equal to an uninterrupted run's over the same events:

- drills 3 and 4: Redis stopped for 20 s, then the ClickHouse service for 20 s, on one job:
  each loader retries, commits no offset while its store is down, and catches up; Prometheus
  fires LambdaFeaturesStoreUnwritable for that store during the outage;
- drill 2: the broker stopped for 30 s (SIGSTOP: frozen, not ended) and continued: the job
  and its loaders carry on by themselves, and Prometheus fires LambdaFeaturesKafkaUnreachable
  meanwhile;
- the broker SIGKILLed mid-stream and started again on the same data directory: nothing lost
  or doubled in any sink, the job and its loaders recover by themselves;
- drill 5: the same with the broker in a network namespace whose link is cut for 30 s;
- rescaling on backlog: the supervisor's autoscaler rescales the job from 1 to 2 subtasks;
- drill 6: redis-server SIGKILLed mid-stream, 20 s down, then started again (`services start`),
  once as it is (its append-only file keeps every acknowledged write: nothing to rebuild) and
  once with its data directory lost with it (a lost node): the online loader finds its marker
  gone, reads the changelog topics again, and Prometheus fires LambdaFeaturesOnlineStoreRebuilt.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from common.kafka import ensure_topics
from common.redis_store import get_redis
from common.services import LocalService, clickhouse_service, kafka_service, local_services, redis_service
from common.settings import Settings
from streaming.autoscaler import MIN_RATE_SPAN_S
from streaming.job import compiled_queries
from streaming.loader import LOADERS
from tests.conftest import cli, shared_env
from tests.support.netns import broker_in_a_namespace
from tests.support.stream_drill import (
    DRILL_EVENTS,
    DRILL_SEED,
    DrainedJob,
    Feeder,
    assert_same_sinks,
    committed_offsets,
    events,
    firing,
    loader_pid,
    make_settings,
    produce,
    snapshot,
    wait_caught_up,
    wait_for,
)

FIRST = 10_000  # produced before the job starts; the rest paced over as long as the drill's faults last


def paced(s: Settings, evs: list[dict], lasting_s: int) -> Feeder:
    """A feeder of the events after the FIRST, spread over lasting_s seconds."""
    return Feeder(s, evs[FIRST:], -(-(len(evs) - FIRST) // lasting_s))


def start_drill(s: Settings, env: dict[str, str], lasting_s: int):
    """The drill's job, with every service and Prometheus, and a feeder ready to pace the rest
    over lasting_s seconds."""
    evs = events(DRILL_EVENTS, DRILL_SEED)
    for svc in local_services(s):
        svc.start()
    ensure_topics(s, [s.kafka.events_topic], s.kafka.partitions)
    produce(s, evs[:FIRST])
    feeder = paced(s, evs, lasting_s)
    feeder.start()
    job = DrainedJob(env)
    try:
        redis = get_redis(s)
        wait_for(lambda: redis.dbsize() > 100, 300, "the online loader to write", job.alive)
    except BaseException:
        job.save(s.home / "stream-run.log")  # the whole output: the assertion shows its tail
        os.killpg(job.pid, signal.SIGKILL)
        raise
    feeder.go.set()
    return job, job.alive, feeder


def end_drill(s: Settings, job) -> None:
    """Keep the job's whole output (to look at after a failure), kill it if it still runs, and
    stop every service."""
    if job:
        job.save(s.home / "stream-run.log")
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    for svc in local_services(s):
        svc.stop()


def committed(s: Settings, role: str) -> dict:
    """The loader's committed offset on each partition of its topics."""
    topics = [s.kafka.features_topic_prefix + q.output for _, q in compiled_queries(s) if LOADERS[role].wants(q)]
    parts = [(t, p) for t in topics for p in range(s.kafka.partitions)]
    return committed_offsets(s, f"{s.kafka.group_id}-{role}", parts)


def store_outage(s: Settings, job, alive, feeder: Feeder, svc: LocalService, store: str, role: str) -> None:
    """Stop the store for 20 s mid-stream: the alert fires, the loader (the same process)
    commits nothing meanwhile; then start it again."""
    assert feeder.pacing, "the stream was not flowing when the fault began"
    pid = loader_pid(job, role)
    svc.stop()
    began = time.monotonic()
    time.sleep(5)  # the commit of what was written before the outage has landed by now
    before = committed(s, role)
    wait_for(lambda: firing(s, "LambdaFeaturesStoreUnwritable", store=store), 14, f"the alert on {store}", alive)
    print(f"DRILL {store}: alert firing {time.monotonic() - began:.1f} s into the outage")
    time.sleep(max(0.0, 20 - (time.monotonic() - began)))
    assert committed(s, role) == before, f"the {role} loader committed offsets while {store} was down"
    assert loader_pid(job, role) == pid, f"the {role} loader was restarted instead of retrying"
    assert feeder.pacing, "the stream stopped flowing during the fault"
    svc.start()
    back = time.monotonic()
    wait_for(lambda: committed(s, role) != before, 120, f"the {role} loader to write again", alive)
    print(f"DRILL {store}: the loader committed again {time.monotonic() - back:.1f} s after the store was back")


def test_redis_then_clickhouse_down_for_20s_mid_stream(uninterrupted, tmp_path, shared_kafka):
    s, env = make_settings(
        tmp_path / "drill", LAMBDA_FEATURES_MONITORING__SCRAPE_INTERVAL_S="1", **shared_env(shared_kafka)
    )
    job = None
    try:
        job, alive, feeder = start_drill(s, env, lasting_s=75)  # two outages of 20 s, each store back in a few seconds
        store_outage(s, job, alive, feeder, redis_service(s), "redis", "online")
        store_outage(s, job, alive, feeder, clickhouse_service(s), "clickhouse", "olap")
        feeder.finish()
        wait_caught_up(s, DRILL_EVENTS, alive)
        job.stop()
        drilled = snapshot(s)
    finally:
        end_drill(s, job)
    assert_same_sinks(drilled, uninterrupted, events(DRILL_EVENTS, DRILL_SEED), s.kafka.partitions)


def broker_unreachable_for_30s(s: Settings, env: dict[str, str], uninterrupted: dict, cut, heal) -> None:
    """While events flow, cut() the broker off for 30 s, then heal(): the exporter sees it and
    Prometheus fires the alert; the job and its loaders carry on by themselves."""
    job = None
    try:
        job, alive, feeder = start_drill(s, env, lasting_s=45)  # an outage of 30 s
        assert feeder.pacing
        cut()
        try:
            began = time.monotonic()
            wait_for(lambda: firing(s, "LambdaFeaturesKafkaUnreachable"), 25, "the alert on the broker", alive)
            print(f"DRILL broker: alert firing {time.monotonic() - began:.1f} s into the outage")
            time.sleep(max(0.0, 30 - (time.monotonic() - began)))
        finally:
            heal()
        assert feeder.pacing, "the stream was not mid-way when the broker came back"
        feeder.finish()
        sent = time.monotonic()
        wait_caught_up(s, DRILL_EVENTS, alive)
        print(f"DRILL broker: every sink caught up {time.monotonic() - sent:.0f} s after the last event was sent")
        out = job.stop()
        drilled = snapshot(s)
    finally:
        end_drill(s, job)
    assert b"died" not in out, out.decode()[-3000:]  # no loader restarted: they waited
    assert_same_sinks(drilled, uninterrupted, events(DRILL_EVENTS, DRILL_SEED), s.kafka.partitions)


def test_broker_down_for_30s_mid_stream(uninterrupted, tmp_path):
    s, env = make_settings(tmp_path / "drill", LAMBDA_FEATURES_MONITORING__SCRAPE_INTERVAL_S="1")
    broker = kafka_service(s)
    frozen: list[int] = []

    def cut() -> None:
        frozen.append(broker.pid())
        os.kill(frozen[0], signal.SIGSTOP)

    broker_unreachable_for_30s(s, env, uninterrupted, cut, lambda: os.kill(frozen[0], signal.SIGCONT))


def test_broker_sigkill_mid_stream_then_restart_on_its_data(uninterrupted, tmp_path):
    s, env = make_settings(tmp_path / "drill", LAMBDA_FEATURES_MONITORING__ENABLED="false")
    broker = kafka_service(s)
    job = None
    try:
        job, alive, feeder = start_drill(s, env, lasting_s=60)  # 5 s down, then a restart of 15 to 30 s
        assert feeder.pacing
        os.kill(broker.pid(), signal.SIGKILL)
        time.sleep(5)  # events keep coming while it is down
        began = time.monotonic()
        broker.start()  # recovers its logs from the same directory
        print(f"DRILL broker SIGKILL: started again in {time.monotonic() - began:.1f} s")
        assert feeder.pacing, "the stream was not mid-way when the broker came back"
        feeder.finish()
        wait_caught_up(s, DRILL_EVENTS, alive)
        out = job.stop()
        drilled = snapshot(s)
    finally:
        end_drill(s, job)
    assert b"died" not in out, out.decode()[-3000:]  # no loader restarted: they waited
    assert_same_sinks(drilled, uninterrupted, events(DRILL_EVENTS, DRILL_SEED), s.kafka.partitions)


def test_network_partition_between_the_job_and_the_broker(uninterrupted, tmp_path):
    """Drill 5: the broker in a network namespace of this test's own, reached over a veth pair;
    the pair's far end goes down for 30 s, so every packet to the broker is lost."""
    with broker_in_a_namespace(tmp_path) as (bootstrap_address, cut, heal):
        s, env = make_settings(
            tmp_path / "drill",
            LAMBDA_FEATURES_MONITORING__SCRAPE_INTERVAL_S="1",
            LAMBDA_FEATURES_KAFKA__BOOTSTRAP=bootstrap_address,
        )
        broker_unreachable_for_30s(s, env, uninterrupted, cut, heal)


def test_autoscaler_rescales_from_1_to_2_mid_stream(uninterrupted, tmp_path, monkeypatch):
    """Rescaling on backlog through the supervisor: its autoscaler, made to want more than
    one subtask (a target utilisation of 0.1%), requests a rescale; the stream_deploy run stops
    the job with a savepoint and restores it with parallelism 2 while events flow."""
    from dagster import build_sensor_context

    from orchestration.definitions import build_definitions
    from orchestration.instance import dagster_instance
    from streaming.deployment import STREAM_PIPELINE, StreamDeployment
    from streaming.flink_rest import FlinkRest

    s, env = make_settings(
        tmp_path / "drill",
        LAMBDA_FEATURES_STREAM__PARALLELISM="1",
        LAMBDA_FEATURES_MONITORING__ENABLED="false",
        LAMBDA_FEATURES_ORCHESTRATION__AUTOSCALE="true",
        # far below what the busiest task shows (its busy share counts as 1% at least, MIN_BUSY)
        LAMBDA_FEATURES_ORCHESTRATION__TARGET_UTILIZATION="0.001",
        LAMBDA_FEATURES_ORCHESTRATION__UTILIZATION_BOUNDARY="0",
        LAMBDA_FEATURES_ORCHESTRATION__RESCALE_COOLDOWN_S="0",
    )
    for k, v in (env | {"DAGSTER_HOME": str(s.dagster_home)}).items():
        monkeypatch.setenv(k, v)
    defs = build_definitions(s)
    instance = dagster_instance(s)
    deploy = defs.resolve_job_def("stream_deploy")
    sensor = defs.resolve_sensor_def("stream_supervisor")
    deployment = StreamDeployment(s)
    evs = events(DRILL_EVENTS, DRILL_SEED)

    def alive() -> None:
        assert deployment.status(with_lag=False).running, deployment.log_file.read_text()[-3000:]

    def tick(cursor: str | None):
        with build_sensor_context(instance=instance, definitions=defs, resources=defs.resources, cursor=cursor) as ctx:
            return sensor.evaluate_tick(ctx)

    try:
        produce(s, evs[:FIRST])
        feeder = paced(s, evs, lasting_s=90)  # a decision on measured rates, then a rescale
        feeder.start()
        first = deploy.execute_in_process(instance=instance)
        assert first.asset_materializations_for_node("stream_job")[0].metadata["parallelism"].value == 1
        redis = get_redis(s)
        wait_for(lambda: redis.dbsize() > 100, 300, "the online loader to write", alive)
        feeder.go.set()

        def decided():
            """Two polls (the input rate is measured between them, at least MIN_RATE_SPAN_S
            apart), once Flink's REST API serves the source's metrics (it fetches them every
            10 s, and lists none before)."""
            cursor = tick(None).cursor
            time.sleep(MIN_RATE_SPAN_S + 1)
            result = tick(cursor)
            [observed] = [
                e for e in result.asset_events if getattr(e, "asset_key", None) and "autoscaler" in e.metadata
            ]
            return (result, observed) if observed.metadata["autoscaler"].value != "no rate measured yet" else None

        result, observed = wait_for(decided, 120, "a decision on measured rates", alive)
        assert observed.metadata["parallelism"].value == 1 and observed.metadata["needed parallelism"].value == 2, (
            observed.metadata["autoscaler"]
        )
        [request] = result.run_requests
        assert request.run_config == {"ops": {"stream_job": {"config": {"parallelism": 2}}}}
        assert feeder.pacing, "the stream was not flowing when the rescale began"

        rescaled = deploy.execute_in_process(instance=instance, run_config=request.run_config, tags=request.tags)
        meta = rescaled.asset_materializations_for_node("stream_job")[0].metadata
        assert meta["action"].value == "rescaled" and meta["parallelism"].value == 2
        assert "savepoint-" in meta["savepoint"].value and meta["restored from"].value == meta["savepoint"].value
        rest = FlinkRest(deployment.rest_address)
        jid = rest.job(STREAM_PIPELINE)["jid"]
        assert max(v["parallelism"] for v in rest.vertices(jid)) == 2
        assert feeder.pacing, "the stream was not flowing after the rescale"

        feeder.finish()
        wait_caught_up(s, DRILL_EVENTS, alive)
        assert tick(None).run_requests == []  # at the bound (2 partitions): nothing more to do
    finally:
        deployment.stop(savepoint=False)
    drilled = snapshot(s)
    assert_same_sinks(drilled, uninterrupted, events(DRILL_EVENTS, DRILL_SEED), s.kafka.partitions)


def loader_metrics(s: Settings) -> dict[tuple[str, str], float]:
    """The online loader's lf_online_rebuild* samples, by (name, reason)."""
    text = requests.get(f"http://127.0.0.1:{s.monitoring.loader_port}/metrics", timeout=5).text
    return {
        (sample.name, sample.labels.get("reason", "")): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("lf_online_rebuild")
        for sample in family.samples
    }


@pytest.mark.parametrize("data_lost", [False, True], ids=["aof-kept", "node-lost"])
def test_redis_killed_for_20s_mid_stream(uninterrupted, tmp_path, data_lost):
    s, env = make_settings(tmp_path / "drill", LAMBDA_FEATURES_MONITORING__SCRAPE_INTERVAL_S="1")
    redis = redis_service(s)
    job = None
    try:
        job, alive, feeder = start_drill(s, env, lasting_s=45)  # 20 s down
        assert feeder.pacing, "the stream was not flowing when the fault began"
        pid = redis.pid()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # started by this test's start_drill: its child
        killed = time.time()
        if data_lost:
            shutil.rmtree(s.home / "redis")
        time.sleep(20)
        alive()
        assert feeder.pacing, "the stream stopped flowing during the fault"
        assert cli(["services", "start"], env).wait(60) == 0
        if data_lost:
            wait_for(lambda: firing(s, "LambdaFeaturesOnlineStoreRebuilt"), 120, "the alert on the rebuild", alive)
            wait_for(lambda: loader_metrics(s).get(("lf_online_rebuilds_total", "lost")), 300, "the rebuild", alive)
            seen = loader_metrics(s)
            healed = seen[("lf_online_rebuild_finished_timestamp_seconds", "lost")] - killed
            print(
                f"DRILL redis node lost: rebuilt in {seen[('lf_online_rebuild_seconds', 'lost')]:.1f} s, "
                f"{seen[('lf_online_rebuild_keys', 'lost')]:.0f} keys; {healed:.1f} s from the kill to healed"
            )
        feeder.finish()
        wait_caught_up(s, DRILL_EVENTS, alive)
        seen = loader_metrics(s)
        job.stop()
        drilled = snapshot(s)
    finally:
        end_drill(s, job)
    assert_same_sinks(drilled, uninterrupted, events(DRILL_EVENTS, DRILL_SEED), s.kafka.partitions)
    assert (seen.get(("lf_online_rebuilds_total", "lost"), 0) >= 1) == data_lost, seen
