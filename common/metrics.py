"""The platform's own Prometheus metrics of the loaders (`lf_` prefix), and the HTTP endpoint
every long-running process serves them on (127.0.0.1, a port from MONITORING__*).
The list of every metric and what it means is in docs/operations.md."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from common.settings import Settings

log = logging.getLogger(__name__)

# Buckets of a flush or a write: a Redis pipeline takes ~1 ms, a ClickHouse insert up to seconds.
_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# From an event's time to its value in the online store: p99 target 0.5 s, a replay of old days years.
_FRESHNESS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300, 600, 3600, 86400)
_ROWS = (1, 10, 100, 1000, 10_000, 50_000, 100_000, 1_000_000)

LOADER_ROWS = Counter(
    "lf_loader_rows_total", "Feature changes the loader wrote, by store and feature", ["store", "feature"]
)
LOADER_FLUSH = Histogram(
    "lf_loader_flush_seconds", "Time of one flush of the loader to a store", ["store"], buckets=_LATENCY
)
LOADER_BATCH_ROWS = Histogram("lf_loader_batch_rows", "Feature changes in one flush", ["store"], buckets=_ROWS)
LOADER_BATCH_AGE = Histogram(
    "lf_loader_batch_age_seconds",
    "How long a batch gathered before its flush (since the store's previous flush)",
    ["store"],
    buckets=_LATENCY,
)
REDIS_WRITE = Histogram("lf_redis_write_seconds", "Latency of one Redis pipeline of the loader", buckets=_LATENCY)
ONLINE_FRESHNESS = Histogram(
    "lf_online_freshness_seconds",
    "From an event's time to its user's update in the online store (Redis)",
    buckets=_FRESHNESS,
)
FEATURE_NEWEST = Gauge(
    "lf_feature_newest_timestamp_seconds",
    "Newest data time the loader wrote per feature: window or session end, update time; "
    "feature online_store: the newest event time in Redis",
    ["feature"],
)
FEATURE_LAST_WRITE = Gauge(
    "lf_feature_last_write_timestamp_seconds", "When the loader last wrote the feature", ["feature", "store"]
)

STORE_UP = Gauge(
    "lf_loader_store_up", "1 when the loader's last write to its store succeeded, 0 while it retries", ["store"]
)
STORE_ERRORS = Counter(
    "lf_loader_store_errors_total", "Writes of the loader that failed to reach its store (each retried)", ["store"]
)

ONLINE_REBUILDS = Counter(
    "lf_online_rebuilds_total",
    "Rebuilds of the online store from the changelog topics, by reason: lost (the store lost "
    "changes the loader had written) or requested (`stream rebuild-online`)",
    ["reason"],
)
ONLINE_REBUILD_SECONDS = Gauge(
    "lf_online_rebuild_seconds", "How long the last rebuild of the online store took", ["reason"]
)
ONLINE_REBUILD_KEYS = Gauge("lf_online_rebuild_keys", "Users' keys the last rebuild rewrote", ["reason"])
ONLINE_REBUILD_FINISHED = Gauge(
    "lf_online_rebuild_finished_timestamp_seconds", "When the last rebuild of the online store ended", ["reason"]
)
ONLINE_REBUILDING = Gauge("lf_online_rebuilding", "1 while the online loader rebuilds the online store")


def online_rebuild(reason: str, seconds: float | None = None, keys: int = 0) -> None:
    """A rebuild of the online store began (seconds None) or ended."""
    if seconds is None:
        ONLINE_REBUILDING.set(1)
        return
    ONLINE_REBUILDING.set(0)
    ONLINE_REBUILDS.labels(reason).inc()
    ONLINE_REBUILD_SECONDS.labels(reason).set(seconds)
    ONLINE_REBUILD_KEYS.labels(reason).set(keys)
    ONLINE_REBUILD_FINISHED.labels(reason).set_to_current_time()


def store_write(store: str, ok: bool) -> None:
    """After a write to the store: it succeeded, or it failed and will be retried."""
    STORE_UP.labels(store).set(1 if ok else 0)
    if not ok:
        STORE_ERRORS.labels(store).inc()


@dataclass
class _Flushes:
    """The previous flush per store, and the newest time written per feature (gauges only rise)."""

    last: dict[str, float]
    newest: dict[str, float]
    lock: threading.Lock


_state = _Flushes({}, {}, threading.Lock())


def _batch(store: str, rows: int, seconds: float) -> None:
    now = time.monotonic()
    with _state.lock:
        previous = _state.last.get(store)
        _state.last[store] = now
    if previous is not None:
        LOADER_BATCH_AGE.labels(store).observe(now - previous)
    LOADER_FLUSH.labels(store).observe(seconds)
    LOADER_BATCH_ROWS.labels(store).observe(rows)


def _newest(feature: str, seconds: float) -> None:
    with _state.lock:
        if seconds <= _state.newest.get(feature, float("-inf")):
            return
        _state.newest[feature] = seconds
    FEATURE_NEWEST.labels(feature).set(seconds)


def redis_flushed(
    online: Iterable[tuple[tuple[str, str], str]], flush_s: float, write_s: float, fresh: bool = True
) -> None:
    """After a flush of `online` ((key, feature) -> value) to Redis that took flush_s, of which the
    pipeline write_s: rows, latencies, and the freshness of every `last_event_time` written
    (unless not fresh: old changes read again by a rebuild)."""
    now = time.time()
    counts: dict[str, int] = {}
    newest_ms = None
    for (_, feature), value in online:
        counts[feature] = counts.get(feature, 0) + 1
        if feature == "last_event_time" and fresh:
            ms = int(value)
            ONLINE_FRESHNESS.observe(max(0.0, now - ms / 1000))
            newest_ms = ms if newest_ms is None else max(newest_ms, ms)
    for feature, n in counts.items():
        LOADER_ROWS.labels("redis", feature).inc(n)
        FEATURE_LAST_WRITE.labels(feature, "redis").set(now)
    REDIS_WRITE.observe(write_s)
    _batch("redis", sum(counts.values()), flush_s)
    if newest_ms is not None:
        _newest("online_store", newest_ms / 1000)


def _epoch(value: str) -> float:
    dt = datetime.fromisoformat(value)
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def clickhouse_flushed(feature: str, time_columns: list[str], batch: list[bytes], seconds: float) -> None:
    """After one feature's batch (JSON rows) went into its ClickHouse table in `seconds`. The newest
    time is read from the batch's last row only: the loader does not decode ClickHouse rows, and
    a topic's rows come about in time order."""
    LOADER_ROWS.labels("clickhouse", feature).inc(len(batch))
    FEATURE_LAST_WRITE.labels(feature, "clickhouse").set_to_current_time()
    last = orjson.loads(batch[-1]) if batch else {}
    times = [last[c] for c in time_columns if last.get(c)]
    if times:
        _newest(feature, max(_epoch(t) for t in times))


def clickhouse_flush_done(rows: int, seconds: float) -> None:
    """After a whole ClickHouse flush (every feature's batch)."""
    _batch("clickhouse", rows, seconds)


class MetricsServer:
    """The /metrics endpoint of this process on 127.0.0.1; stop() shuts it down."""

    def __init__(self, port: int, registry: CollectorRegistry = REGISTRY) -> None:
        self.server, self.thread = start_http_server(port, addr="127.0.0.1", registry=registry)
        self.port = self.server.server_address[1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve_metrics(settings: Settings, port: int, what: str, registry: CollectorRegistry = REGISTRY):
    """Serve this process's metrics on 127.0.0.1:port unless monitoring is off; a taken port is
    logged, not fatal (metrics must not stop a job). Returns the server or None."""
    if not settings.monitoring.enabled:
        return None
    try:
        server = MetricsServer(port, registry)
    except OSError as e:
        log.warning("no metrics for %s: cannot listen on 127.0.0.1:%d (%s)", what, port, e)
        return None
    log.info("metrics of %s on http://127.0.0.1:%d/metrics", what, server.port)
    return server
