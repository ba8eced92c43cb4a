"""The speed settings reach the job's configuration and DDL, bad values are named, and the
online loader times what the benchmark asks."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from common.errors import PlatformError
from common.settings import load_settings
from streaming.flink_env import flink_config
from streaming.job import KafkaSource, compiled_queries, feature_sink_ddl, source_ddl
from streaming.loader import LOADERS, LoaderStats


def test_state_backend_and_latency_settings_reach_flink(tmp_path):
    s = load_settings(home=tmp_path, stream={"state_backend": "rocksdb", "watermark_interval_ms": 50})
    rocks = flink_config(s, with_kafka=False, pipeline_name="p")
    assert rocks["state.backend.type"] == "rocksdb" and rocks["taskmanager.memory.managed.size"] == "512m"
    assert rocks["pipeline.auto-watermark-interval"] == "50 ms"
    assert rocks["table.exec.mini-batch.enabled"] == "false"
    s = load_settings(home=tmp_path, stream={"state_backend": "hashmap", "buffer_timeout_ms": 10})
    heap = flink_config(s, with_kafka=False, pipeline_name="p")
    # the window aggregations' buffers need managed memory with either backend
    assert heap["state.backend.type"] == "hashmap" and heap["taskmanager.memory.managed.size"] == "512m"
    assert "state.backend.rocksdb.timer-service.factory" not in heap
    assert heap["execution.buffer-timeout.interval"] == "10 ms"


def test_state_backend_is_checked(monkeypatch):
    monkeypatch.setenv("LAMBDA_FEATURES_STREAM__STATE_BACKEND", "ondisk")
    with pytest.raises(PlatformError, match="LAMBDA_FEATURES_STREAM__STATE_BACKEND"):
        load_settings()


def test_kafka_hops_and_fold_reach_the_ddl(tmp_path):
    s = load_settings(
        home=tmp_path,
        stream={"changelog_fold_ms": 1000, "changelog_fold_rows": 50_000},
        kafka={"events_fetch_max_wait_ms": 5, "events_fetch_min_bytes": 1024, "features_linger_ms": 0},
    )
    src = source_ddl(KafkaSource("t", "b:9092", "g"), s, (0, 1))
    assert "'properties.fetch.max.wait.ms' = '5'" in src and "'properties.fetch.min.bytes' = '1024'" in src
    queries = {q.output: q for _, q in compiled_queries(s)}
    cart = feature_sink_ddl(queries["cart_amount"], "kafka", s)
    assert "'connector' = 'upsert-kafka'" in cart and "'properties.linger.ms' = '0'" in cart
    assert "'sink.buffer-flush.interval' = '1000 ms'" in cart and "'sink.buffer-flush.max-rows' = '50000'" in cart
    unfolded = load_settings(home=tmp_path, stream={"changelog_fold_ms": 0})
    cart = feature_sink_ddl(queries["cart_amount"], "kafka", unfolded)
    assert "'sink.buffer-flush.interval' = '0 ms'" in cart and "'sink.buffer-flush.max-rows' = '0'" in cart


def test_online_loader_reads_only_per_user_features(tmp_path):
    queries = [q for _, q in compiled_queries(load_settings(home=tmp_path))]
    online = {q.output for q in queries if LOADERS["online"].wants(q)}
    assert online == {"cart_amount", "last_searches", "last_event_time"}
    assert all(LOADERS["olap"].wants(q) for q in queries)


def test_loader_stats_survive_the_pipe_and_add_up():
    a = LoaderStats(messages=3, redis_writes=2)
    a.topic_messages["t"] += 3
    a.latency_ms["event_to_visible"][120] += 2
    b = LoaderStats.from_json(a.as_json())
    assert b == a
    assert (a + b).latency_ms["event_to_visible"][120] == 4 and (a + b).topic_messages["t"] == 6
    assert LoaderStats.from_json(a.as_json(latency=False)).latency_ms == {}


def test_watermarks_on_event_for_a_replay_and_periodic_for_a_live_job(tmp_path):
    auto = load_settings(home=tmp_path)
    live = source_ddl(KafkaSource("t", "b:9092", "g"), auto, (0, 1))
    replay = source_ddl(KafkaSource("t", "b:9092", "g", stop_offsets={0: 5}), auto, (0, 1))
    assert "'scan.watermark.emit.strategy' = 'on-periodic'" in live
    assert "'scan.watermark.emit.strategy' = 'on-event'" in replay
    forced = load_settings(home=tmp_path, stream={"watermark_emit": "on-event"})
    assert "'scan.watermark.emit.strategy' = 'on-event'" in source_ddl(KafkaSource("t", "b:9092", "g"), forced, (0, 1))


def test_the_online_loader_times_only_what_follows_the_warm_up(tmp_path, monkeypatch):
    monkeypatch.setattr("streaming.loader.get_redis", lambda settings: None)  # nothing here flushes
    s = load_settings(home=tmp_path)
    loader = LOADERS["online"](s, [q for _, q in compiled_queries(s)], measure_latency=30)
    topic = next(t for t, q in loader.queries.items() if q.feature.name == "last_event_time")
    for user, event_ms in [(1, 1_000_000), (2, 1_020_000), (3, 1_030_000), (4, 1_031_000)]:
        at = datetime.fromtimestamp(event_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        row = {"user_id": user, "last_event_time": at}
        loader.add(topic, orjson.dumps(row), kafka_ts_ms=event_ms + 5, received_ms=event_ms + 9.0)
    assert [t[0] for t in loader.timings] == [1_030_000, 1_031_000]  # 30 s after the first event seen
