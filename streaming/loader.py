"""Feature changelogs (Kafka topics written by the stream job) -> Redis and ClickHouse.

Batched: Redis every `redis.flush_records` changes or `redis.flush_ms`; ClickHouse every
`clickhouse.flush_rows` rows or `clickhouse.flush_ms`; Kafka offsets are committed only
after both stores hold what came before them, so a restart replays, never skips.
Writes are idempotent (Redis HSET of the latest value, ReplacingMergeTree in ClickHouse).
ClickHouse gets the messages' JSON as it is (JSONEachRow); only the per-user features are
decoded here, for Redis.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from common import metrics
from common.clickhouse import get_client
from common.kafka import bootstrap
from common.redis_store import get_redis, queue_heartbeat, time_field, user_key
from common.settings import Settings
from streaming.sql import FlinkQuery
from warehouse.tables import stream_table, time_columns

log = logging.getLogger(__name__)
END_MARKER = "__end__"
_END_PREFIX = b'{"__end__"'


def _time(v: str | None) -> datetime | None:
    if v is None:
        return None
    dt = datetime.fromisoformat(v)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _epoch_ms(v: str) -> str:
    return str(int(_time(v).timestamp() * 1000))  # type: ignore[union-attr]


def online_value(q: FlinkQuery, row: dict[str, Any]) -> str:
    """How a feature value is stored in the user's Redis hash."""
    value = row[q.feature.online_column]  # type: ignore[index]
    if isinstance(value, list):
        return orjson.dumps(value).decode()
    col = next(c for c in q.columns if c.name == q.feature.online_column)
    if col.clickhouse.startswith("DateTime64"):
        return _epoch_ms(value)
    if col.clickhouse.startswith("Decimal"):
        return f"{Decimal(str(value)):.2f}"
    return str(value)


def online_fields(settings: Settings, q: FlinkQuery, row: dict[str, Any]) -> dict[tuple[str, str], str]:
    """What one changelog row of a per-user feature sets in the user's hash, by (key, field):
    the value, and its event time when the value is not that time itself."""
    key = user_key(settings, row["user_id"])
    out = {(key, q.feature.name): online_value(q, row)}
    if tf := time_field(q.feature):
        out[(key, tf)] = _epoch_ms(row[q.feature.time_column])
    return out


@dataclass
class LoaderStats:
    messages: int = 0
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    redis_writes: int = 0
    tombstones_skipped: int = 0
    latencies_ms: list[float] = field(default_factory=list)


class FeatureLoader:
    """Consumes every feature topic and writes the stores; run it in a thread."""

    def __init__(
        self, settings: Settings, queries: list[FlinkQuery], run_id: str | None = None, measure_latency: bool = False
    ) -> None:
        self.settings = settings
        self.queries = {settings.kafka.features_topic_prefix + q.output: q for q in queries}
        self.run_id = run_id
        self.measure_latency = measure_latency
        self.stats = LoaderStats()
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None

    # -- the loop ------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # surfaced by the caller, which owns the exit status
            self.error = e
            log.exception("feature loader failed")
        finally:
            self.done.set()

    def _run(self) -> None:
        from confluent_kafka import OFFSET_STORED, Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap(self.settings),
                "group.id": self.settings.kafka.group_id + "-loader",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 10,
            }
        )
        md = consumer.list_topics(timeout=10)
        assignment = [
            TopicPartition(t, p, OFFSET_STORED) for t in self.queries for p in sorted(md.topics[t].partitions)
        ]
        consumer.assign(assignment)
        pending_ends = {(tp.topic, tp.partition) for tp in assignment}
        redis = get_redis(self.settings)
        ch = get_client(self.settings)
        rcfg, ccfg = self.settings.redis, self.settings.clickhouse
        online: dict[tuple[str, str], str] = {}
        rows: dict[str, list[bytes]] = defaultdict(list)
        n_rows = 0
        offsets: dict[tuple[str, int], int] = {}
        last_redis = last_ch = time.monotonic()
        latency_pending: list[float] = []

        def flush_online() -> None:
            nonlocal online, last_redis
            if online:
                self._flush_redis(redis, online)
                wall = time.time() * 1000
                self.stats.latencies_ms.extend(wall - t for t in latency_pending)
                latency_pending.clear()
                online = {}
            last_redis = time.monotonic()

        while True:
            msgs = consumer.consume(num_messages=1000, timeout=rcfg.flush_ms / 1000)
            for m in msgs:
                if m.error():
                    log.warning("kafka error: %s", m.error())
                    continue
                self.stats.messages += 1
                offsets[(m.topic(), m.partition())] = m.offset() + 1
                value = m.value()
                if value is None:
                    # the delete half of a transient -D/+I: the insert follows, and
                    # applying it would make the value briefly vanish online
                    self.stats.tombstones_skipped += 1
                    continue
                if value.startswith(_END_PREFIX):
                    if self.run_id is None or orjson.loads(value)[END_MARKER] == self.run_id:
                        pending_ends.discard((m.topic(), m.partition()))
                    continue
                rows[m.topic()].append(value)
                n_rows += 1
                q = self.queries[m.topic()]
                if q.feature.online_column:
                    fields = online_fields(self.settings, q, orjson.loads(value))
                    online.update(fields)
                    if self.measure_latency and q.feature.name == "last_event_time":
                        latency_pending.append(float(next(iter(fields.values()))))
                    if len(online) >= rcfg.flush_records:
                        flush_online()
            now = time.monotonic()
            if (now - last_redis) * 1000 >= rcfg.flush_ms:
                flush_online()
            finished = not pending_ends or self.stop_event.is_set()
            if n_rows >= ccfg.flush_rows or (now - last_ch) * 1000 >= ccfg.flush_ms or finished:
                flush_online()  # offsets are committed only once both stores hold their messages
                self._flush_clickhouse(ch, rows)
                rows = defaultdict(list)
                n_rows = 0
                if offsets:
                    consumer.commit(
                        offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
                    )
                last_ch = now
            if finished:
                break
        consumer.close()

    def _flush_redis(self, redis, online: dict[tuple[str, str], str]) -> None:
        started = time.perf_counter()
        by_key: dict[str, dict[str, str]] = defaultdict(dict)
        for (key, fld), v in online.items():
            by_key[key][fld] = v
        pipe = redis.pipeline(transaction=False)
        for key, mapping in by_key.items():
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, self.settings.redis.key_ttl_s)
        queue_heartbeat(pipe, self.settings, online.items())
        sent = time.perf_counter()
        pipe.execute()
        done = time.perf_counter()
        metrics.redis_flushed(online.items(), done - started, done - sent)
        self.stats.redis_writes += len(online)

    def _flush_clickhouse(self, ch, rows: dict[str, list[bytes]]) -> None:
        db = self.settings.clickhouse.database
        flush_started = time.perf_counter()
        for topic, batch in rows.items():
            if not batch:
                continue
            q = self.queries[topic]
            table = stream_table(q.feature)
            started = time.perf_counter()
            ch.raw_insert(
                f"{db}.{table}",
                [c.name for c in q.columns],
                insert_block=b"\n".join(batch),
                fmt="JSONEachRow",
                settings={"date_time_input_format": "best_effort"},
            )
            self.stats.rows[table] += len(batch)
            metrics.clickhouse_flushed(q.feature.name, time_columns(q.feature), batch, time.perf_counter() - started)
        if any(rows.values()):
            metrics.clickhouse_flush_done(sum(map(len, rows.values())), time.perf_counter() - flush_started)


def send_end_markers(settings: Settings, topics: list[str], run_id: str) -> None:
    """After a bounded job finished: one marker per partition tells the loader it has all."""
    from common.kafka import partitions_of, producer

    p = producer(settings)
    payload = orjson.dumps({END_MARKER: run_id})
    for t in topics:
        for part in partitions_of(settings, t):
            p.produce(t, payload, partition=part)
    p.flush(30)
