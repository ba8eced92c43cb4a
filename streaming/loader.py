"""Feature changelogs (Kafka topics written by the stream job) -> the stores, by two loaders
that share nothing but the topics:

- online: the per-user features -> Redis, every `redis.flush_records` changes or `redis.flush_ms`;
- OLAP: every feature -> ClickHouse, every `clickhouse.flush_rows` rows or `clickhouse.flush_ms`.

Each has its own consumer group and commits its offsets only after its own store holds what
came before them, so a restart replays, never skips, and a slow ClickHouse insert never holds
back an online update. Writes are idempotent (Redis HSET of the latest value,
ReplacingMergeTree in ClickHouse). ClickHouse gets the messages' JSON as it is
(JSONEachRow); only the per-user features are decoded, for Redis.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import orjson
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

from common import metrics
from common.clickhouse import get_client
from common.errors import PlatformError
from common.kafka import bootstrap, stored_offsets
from common.redis_store import (
    get_redis,
    marker_key,
    queue_heartbeat,
    rebuild_request_key,
    time_field,
    user_key,
)
from common.settings import Settings
from streaming.sql import FlinkQuery
from warehouse.tables import stream_table, time_columns

log = logging.getLogger(__name__)
END_MARKER = "__end__"
_END_PREFIX = b'{"__end__"'
END_KEY = b"__end__"  # the end markers' key (a user key is a JSON object)
COMMIT_INTERVAL_S = 1.0  # offsets are committed after a flush, at most this often (and at the end)
REPORT_EVERY_S = 1.0
STORE_CHECK_S = 1.0  # how often the online loader checks its marker and takes rebuild requests when idle
LATENCY_HOPS = ("event_to_emit", "emit_to_loader", "loader_to_visible", "event_to_visible")


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
    topic_messages: Counter = field(default_factory=Counter)  # every message, tombstones included
    rows: Counter = field(default_factory=Counter)  # ClickHouse rows per table
    redis_writes: int = 0
    tombstones_skipped: int = 0
    # per hop, milliseconds -> count (online loader, measure_latency)
    latency_ms: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def __add__(self, other: LoaderStats) -> LoaderStats:
        hops = set(self.latency_ms) | set(other.latency_ms)
        latency = {h: self.latency_ms.get(h, Counter()) + other.latency_ms.get(h, Counter()) for h in hops}
        return LoaderStats(
            self.messages + other.messages,
            self.topic_messages + other.topic_messages,
            self.rows + other.rows,
            self.redis_writes + other.redis_writes,
            self.tombstones_skipped + other.tombstones_skipped,
            defaultdict(Counter, latency),
        )

    def as_json(self, latency: bool = True) -> dict:
        hists = self.latency_ms if latency else {}
        return {
            "messages": self.messages,
            "topic_messages": dict(self.topic_messages),
            "rows": dict(self.rows),
            "redis_writes": self.redis_writes,
            "tombstones_skipped": self.tombstones_skipped,
            "latency_ms": {hop: {str(k): n for k, n in h.items()} for hop, h in hists.items()},
        }

    @classmethod
    def from_json(cls, d: dict) -> LoaderStats:
        lat: dict[str, Counter] = defaultdict(Counter)
        for hop, h in d.get("latency_ms", {}).items():
            lat[hop] = Counter({int(k): n for k, n in h.items()})
        return cls(
            d["messages"],
            Counter(d["topic_messages"]),
            Counter(d["rows"]),
            d["redis_writes"],
            d["tombstones_skipped"],
            lat,
        )


class ChangelogLoader:
    """Consumes its feature topics from its group's committed offsets, buffers, flushes into
    its store, then commits. Bounded runs (run_id set) end once an end marker of that run
    arrived on every partition; otherwise it runs until `should_stop()`."""

    role: ClassVar[str]
    store: ClassVar[str]  # the store's label in the metrics

    def __init__(
        self,
        settings: Settings,
        queries: list[FlinkQuery],
        run_id: str | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.settings = settings
        self.queries = {settings.kafka.features_topic_prefix + q.output: q for q in queries if self.wants(q)}
        self.run_id = run_id
        self.should_stop = should_stop
        self.stats = LoaderStats()
        self.on_progress: Callable[[LoaderStats], None] = lambda stats: None  # about every REPORT_EVERY_S
        # (topic, partition) -> the offset after the last change consumed (flushed: held by the store)
        self.positions: dict[tuple[str, int], int] = {}
        # (topic, partition) -> where to read again from (an offset, or OFFSET_BEGINNING), set when
        # the store lost changes or a rebuild was asked for; taken by run()
        self.rewind: dict[tuple[str, int], int] = {}
        self.assigned: list[tuple[str, int]] = []

    @property
    def group_id(self) -> str:
        return f"{self.settings.kafka.group_id}-{self.role}"

    @staticmethod
    def wants(q: FlinkQuery) -> bool:
        """Whether this loader consumes the query's topic."""
        return True

    def add(self, topic: str, value: bytes, kafka_ts_ms: int, received_ms: float) -> None:
        """Buffer one change."""
        raise NotImplementedError

    def due(self, since_flush_s: float) -> bool:
        """Whether the buffer should go to the store now."""
        raise NotImplementedError

    def flush(self) -> None:
        """Write the buffer to the store; it holds it all when this returns."""
        raise NotImplementedError

    def poll_timeout_s(self) -> float:
        raise NotImplementedError

    def started(self, committed: dict[tuple[str, int], int]) -> None:
        """Once assigned, with the group's committed offsets (those > 0): the store holds them."""

    def maintain(self) -> None:
        """Called on every turn of the loop: a place for cheap periodic checks of the store."""

    def unreachable(self, error: BaseException) -> bool:
        """Whether the error means the store cannot be reached now (worth retrying)."""
        raise NotImplementedError

    def flush_retrying(self) -> None:
        """flush(), retried while the store cannot be reached, for up to STREAM__LOADER_RETRY_S
        (or until told to stop); nothing is committed meanwhile. Raises the last error after."""
        limit = self.settings.stream.loader_retry_s

        def give_up(state: RetryCallState) -> bool:
            return (state.seconds_since_start or 0) >= limit or self.should_stop()

        def failed(state: RetryCallState) -> None:
            metrics.store_write(self.store, ok=False)
            log.warning(
                "cannot write to %s (attempt %d, %.0fs): %s; retrying in %.1fs",
                self.store, state.attempt_number, state.seconds_since_start or 0,
                state.outcome.exception() if state.outcome else "?", state.upcoming_sleep,
            )  # fmt: skip

        for attempt in Retrying(
            retry=retry_if_exception(self.unreachable),
            stop=give_up,
            wait=wait_exponential(multiplier=0.05, max=2),
            before_sleep=failed,
            reraise=True,
        ):
            with attempt:
                self.flush()
        metrics.store_write(self.store, ok=True)

    def run(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        k = self.settings.kafka
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap(self.settings),
                "group.id": self.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": k.features_fetch_max_wait_ms,
                "fetch.min.bytes": k.features_fetch_min_bytes,
            }
        )
        md = consumer.list_topics(timeout=10)
        parts = [TopicPartition(t, p) for t in self.queries for p in sorted(md.topics[t].partitions)]
        # the group's offsets read here, each partition assigned from its own: with OFFSET_STORED,
        # librdkafka fetches them itself and, on a broker still loading its group coordinator,
        # reports NOT_COORDINATOR once and leaves the partitions unread for good
        assignment = [
            TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
            for tp in stored_offsets(consumer, parts)
        ]
        consumer.assign(assignment)
        self.assigned = [(tp.topic, tp.partition) for tp in assignment]
        self.started({(tp.topic, tp.partition): tp.offset for tp in assignment if tp.offset > 0})
        pending_ends = {(tp.topic, tp.partition) for tp in assignment}
        offsets = self.positions
        committed: dict[tuple[str, int], int] = {}
        last_flush = last_commit = last_report = time.monotonic()
        try:
            while True:
                msgs = consumer.consume(num_messages=1000, timeout=self.poll_timeout_s())
                received = time.time() * 1000
                for m in msgs:
                    if m.error():
                        log.warning("kafka error: %s", m.error())
                        continue
                    offsets[(m.topic(), m.partition())] = m.offset() + 1
                    value = m.value()
                    if value is not None and value.startswith(_END_PREFIX):
                        if self.run_id is None or orjson.loads(value)[END_MARKER] == self.run_id:
                            pending_ends.discard((m.topic(), m.partition()))
                        continue
                    self.stats.messages += 1
                    self.stats.topic_messages[m.topic()] += 1
                    if value is None:
                        # the delete half of a transient -D/+I: the insert follows, and
                        # applying it would make the value briefly vanish online
                        self.stats.tombstones_skipped += 1
                        continue
                    self.add(m.topic(), value, m.timestamp()[1], received)
                now = time.monotonic()
                self.maintain()
                finished = not pending_ends or self.should_stop()
                if finished or self.due(now - last_flush) or self.rewind:
                    self.flush_retrying()
                    last_flush = now
                    if self.rewind:  # the store lost changes: read them again, commit nothing before
                        self._rewind(consumer, assignment, offsets, committed)
                        continue
                    if offsets != committed and (finished or now - last_commit >= COMMIT_INTERVAL_S):
                        consumer.commit(
                            offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                            asynchronous=not finished,
                        )
                        committed, last_commit = dict(offsets), now
                if finished:
                    break
                if now - last_report >= REPORT_EVERY_S:
                    self.on_progress(self.stats)
                    last_report = now
        finally:
            consumer.close()

    def _rewind(self, consumer, assignment: list, offsets: dict, committed: dict) -> None:
        """Read the partitions in self.rewind again from where it says; the others go on."""
        from confluent_kafka import TopicPartition

        for key in self.rewind:
            offsets.pop(key, None)
            committed.pop(key, None)
        starts = {(tp.topic, tp.partition): offsets.get((tp.topic, tp.partition), tp.offset) for tp in assignment}
        consumer.assign([TopicPartition(t, p, o) for (t, p), o in (starts | self.rewind).items()])
        self.rewind = {}


@dataclass
class Rebuild:
    """A rebuild of the online store under way: done once every partition read again is back
    where the loader was when it began."""

    reason: str  # lost | requested
    until: dict[tuple[str, int], int]
    started: float = field(default_factory=time.monotonic)
    keys: set[str] = field(default_factory=set)

    def done(self, positions: dict[tuple[str, int], int]) -> bool:
        return all(positions.get(tp, 0) >= end for tp, end in self.until.items())


def _partition(marker_field: str) -> tuple[str, int]:
    topic, _, partition = marker_field.rpartition(":")
    return topic, int(partition)


class OnlineLoader(ChangelogLoader):
    """The per-user features into the users' Redis hashes.

    It also watches that Redis keeps what it wrote: every flush ends with a marker (the offsets
    the store holds per partition, `marker_key`) and reads the marker it left the flush before.
    A marker gone or behind what the loader wrote, or behind the group's committed offsets when
    it starts, means Redis lost acknowledged changes (a restart without its data, an older
    snapshot, a failover to a lagging replica): the loader then reads each such partition again
    from the marker the store kept (its safe point), or from the topic's start when there is none,
    and tells its owner (`on_store_lost`), which republishes the 30-day features."""

    role = "online"
    store = "redis"

    def __init__(self, *args: Any, measure_latency: float | None = None, **kwargs: Any) -> None:
        """measure_latency: time the events whose event time is this many seconds (a warm-up)
        or more after the first one timed; None times nothing."""
        super().__init__(*args, **kwargs)
        metrics.store_write(self.store, ok=True)
        self.measure_latency = measure_latency
        self.timed_from_ms: int | None = None
        self.redis = get_redis(self.settings)
        self.pending: dict[tuple[str, str], str] = {}
        self.timings: list[tuple[int, int, float]] = []  # (event time, Kafka timestamp, received), ms
        self.marker = marker_key(self.settings)
        self.marked: dict[tuple[str, int], int] = {}  # what the store holds, as far as the loader knows
        self.rebuild: Rebuild | None = None
        self.last_check = 0.0
        self.rebuilt: list[dict] = []  # each rebuild ended: reason, seconds, keys, at
        self.on_store_lost: Callable[[], None] = lambda: None

    @staticmethod
    def wants(q: FlinkQuery) -> bool:
        return q.feature.online_column is not None

    def poll_timeout_s(self) -> float:
        return self.settings.redis.flush_ms / 1000

    def unreachable(self, error: BaseException) -> bool:
        import redis

        # refused, reset, timed out, or still loading its data after a restart
        return isinstance(error, (redis.ConnectionError, redis.TimeoutError))

    def started(self, committed: dict[tuple[str, int], int]) -> None:
        self.marked = dict(committed)
        self.check_store()  # a store that lost changes while no loader ran

    def maintain(self) -> None:
        """About every STORE_CHECK_S, even with nothing to write: the marker, and a rebuild request."""
        now = time.monotonic()
        if now - self.last_check < STORE_CHECK_S:
            return
        self.last_check = now
        self.check_store()

    def check_store(self) -> None:
        import redis

        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.marker)
        pipe.getdel(rebuild_request_key(self.settings))
        try:
            marker, request = pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError):
            return  # down: the next flush retries, and this check runs again
        self.compare(marker)
        if request is not None:
            self.requested(orjson.loads(request))

    def compare(self, marker: dict[str, str]) -> bool:
        """Whether the marker shows the store lost changes; if so, begin the rebuild."""
        held = {_partition(k): int(v) for k, v in marker.items()}
        behind = {tp: held.get(tp) for tp, offset in self.marked.items() if held.get(tp, -1) < offset}
        if not behind:
            return False
        from confluent_kafka import OFFSET_BEGINNING

        log.error(
            "Redis lost changes the loader had written (marker %s on %d partitions, e.g. %s at %s instead of %s): "
            "reading them again from the changelog topics",
            "gone" if not marker else "behind", len(behind), *next(iter(behind.items())),
            self.marked[next(iter(behind))],
        )  # fmt: skip
        # the store holds what its marker says; the marker must not say more until it does again
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.marker)
        if held:
            pipe.hset(self.marker, mapping={f"{t}:{p}": o for (t, p), o in held.items()})
        pipe.execute()
        self.begin("lost", {tp: OFFSET_BEGINNING if at is None else at for tp, at in behind.items()})
        self.marked = held
        self.on_store_lost()
        return True

    def requested(self, features: list[str]) -> None:
        """`stream rebuild-online`: read these features' topics (all, when empty) from their start."""
        from confluent_kafka import OFFSET_BEGINNING

        topics = {t for t, q in self.queries.items() if not features or q.feature.name in features}
        log.info("rebuilding %s in Redis from the start of their changelog topics, as requested", sorted(topics))
        self.begin("requested", {tp: OFFSET_BEGINNING for tp in self.assigned if tp[0] in topics})

    def begin(self, reason: str, rewind: dict[tuple[str, int], int]) -> None:
        until = {tp: max(self.positions.get(tp, 0), self.marked.get(tp, 0)) for tp in rewind}
        if self.rebuild:  # one under way: it goes on to the furthest end of both
            until = {tp: max(until.get(tp, 0), self.rebuild.until.get(tp, 0)) for tp in until | self.rebuild.until}
        self.rebuild = Rebuild(reason, until)
        self.rewind.update(rewind)
        for tp, at in rewind.items():  # done once read to `until` again
            self.marked[tp] = max(at, 0)
        metrics.online_rebuild(reason)

    def add(self, topic: str, value: bytes, kafka_ts_ms: int, received_ms: float) -> None:
        q = self.queries[topic]
        fields = online_fields(self.settings, q, orjson.loads(value))
        self.pending.update(fields)
        if self.measure_latency is not None and q.feature.name == "last_event_time":
            event_ms = int(next(iter(fields.values())))
            if self.timed_from_ms is None:
                self.timed_from_ms = event_ms + int(self.measure_latency * 1000)
            if event_ms >= self.timed_from_ms:
                self.timings.append((event_ms, kafka_ts_ms, received_ms))

    def due(self, since_flush_s: float) -> bool:
        r = self.settings.redis
        return len(self.pending) >= r.flush_records or since_flush_s * 1000 >= r.flush_ms

    def flush(self) -> None:
        if not self.pending:
            self._rebuilt()
            return
        started = time.perf_counter()
        by_key: dict[str, dict[str, str]] = defaultdict(dict)
        for (key, fld), v in self.pending.items():
            by_key[key][fld] = v
        positions = dict(self.positions)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.marker)  # what the store kept of the marker the flush before wrote
        for key, mapping in by_key.items():
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, self.settings.redis.key_ttl_s)
        queue_heartbeat(pipe, self.settings, self.pending.items())
        pipe.hset(self.marker, mapping={f"{t}:{p}": o for (t, p), o in positions.items()})  # last
        sent = time.perf_counter()
        marker = pipe.execute()[0]
        done = time.perf_counter()
        metrics.redis_flushed(self.pending.items(), done - started, done - sent, fresh=not self.rebuild)
        if self.rebuild:
            self.rebuild.keys.update(by_key)
        if not self.compare(marker):
            self.marked |= positions  # partitions not read since the start keep their committed offset
        visible = time.time() * 1000
        self.stats.redis_writes += len(self.pending)
        self.pending = {}
        lat = self.stats.latency_ms
        for event, emitted, received in self.timings:
            lat["event_to_emit"][emitted - event] += 1
            lat["emit_to_loader"][round(received - emitted)] += 1
            lat["loader_to_visible"][round(visible - received)] += 1
            lat["event_to_visible"][round(visible - event)] += 1
        self.timings = []
        self._rebuilt()

    def _rebuilt(self) -> None:
        """End the rebuild once the store holds again all it held before."""
        if not self.rebuild or self.rewind or not self.rebuild.done(self.marked):
            return
        r, self.rebuild = self.rebuild, None
        seconds = time.monotonic() - r.started
        metrics.online_rebuild(r.reason, seconds, len(r.keys))
        done = {"reason": r.reason, "seconds": seconds, "keys": len(r.keys), "at": time.time()}
        self.rebuilt.append(done)
        self.redis.set(rebuild_request_key(self.settings) + ":done", orjson.dumps(done))
        log.info("online store rebuilt (%s) in %.1fs: %d users' keys rewritten", r.reason, seconds, len(r.keys))


class OlapLoader(ChangelogLoader):
    """Every feature into its ClickHouse stream table."""

    role = "olap"
    store = "clickhouse"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        metrics.store_write(self.store, ok=True)
        self.client = get_client(self.settings)
        self.rows: dict[str, list[bytes]] = defaultdict(list)
        self.n_rows = 0

    def poll_timeout_s(self) -> float:
        return min(0.1, self.settings.clickhouse.flush_ms / 1000)

    def unreachable(self, error: BaseException) -> bool:
        from clickhouse_connect.driver.exceptions import DatabaseError, ProgrammingError

        # no connection, or an error the server answered (a server that is stopping fails the
        # inserts under way); not a mistake of the client's
        return isinstance(error, DatabaseError) and not isinstance(error, ProgrammingError)

    def add(self, topic: str, value: bytes, kafka_ts_ms: int, received_ms: float) -> None:
        self.rows[topic].append(value)
        self.n_rows += 1

    def due(self, since_flush_s: float) -> bool:
        c = self.settings.clickhouse
        return self.n_rows >= c.flush_rows or since_flush_s * 1000 >= c.flush_ms

    def flush(self) -> None:
        db = self.settings.clickhouse.database
        flush_started = time.perf_counter()
        rows = self.n_rows
        for topic in list(self.rows):
            batch = self.rows[topic]
            if not batch:
                continue
            q = self.queries[topic]
            table = stream_table(q.feature)
            started = time.perf_counter()
            self.client.raw_insert(
                f"{db}.{table}",
                [c.name for c in q.columns],
                insert_block=b"\n".join(batch),
                fmt="JSONEachRow",
                settings={"date_time_input_format": "best_effort"},
            )
            self.stats.rows[table] += len(batch)
            metrics.clickhouse_flushed(q.feature.name, time_columns(q.feature), batch, time.perf_counter() - started)
            del self.rows[topic]  # in the store: a retry of this flush does not insert it again
            self.n_rows -= len(batch)
        if rows:
            metrics.clickhouse_flush_done(rows, time.perf_counter() - flush_started)
        self.rows = defaultdict(list)
        self.n_rows = 0


LOADERS: dict[str, type[ChangelogLoader]] = {c.role: c for c in (OnlineLoader, OlapLoader)}


def send_end_markers(settings: Settings, topics: list[str], run_id: str) -> None:
    """After a bounded job finished: one marker per partition tells the loaders they have all."""
    from common.kafka import partitions_of, producer

    p = producer(settings)
    payload = orjson.dumps({END_MARKER: run_id})
    errors: list[str] = []

    def delivered(err, msg) -> None:
        if err:
            errors.append(f"{msg.topic()}[{msg.partition()}]: {err}")

    for t in topics:
        for part in partitions_of(settings, t):
            # keyed: a compacted topic (the online features') refuses a record without a key
            p.produce(t, payload, key=END_KEY, partition=part, on_delivery=delivered)
    if p.flush(30) or errors:
        raise PlatformError(
            f"the end markers of the bounded run did not reach every feature topic: {errors[:3] or 'not acknowledged'}",
            "check the broker; the loaders wait for a marker on each partition",
        )
