"""The serving log: what the API answered, one record per user and request, to the Kafka topic
SERVING__LOG_TOPIC, for the daily consistency check (docs/serving.md#serving-log).

A request only hands the record to librdkafka's own bounded queue (SERVING__LOG_BUFFER
records), which a background thread of librdkafka sends; `produce` never waits for the
broker. A full queue, or a record the broker has not taken within SERVING__LOG_TIMEOUT_S,
is dropped and counted in lf_serving_log_dropped_total: a slow or absent broker costs the
log records, never a request its answer. `serve` creates the topic at start when the broker
answers; the archiver (batch/serving_log.py) creates it too."""

from __future__ import annotations

import logging
import random
import threading
import time

import orjson
from prometheus_client import CollectorRegistry, Counter

from common.kafka import bootstrap, producer
from common.settings import Settings

log = logging.getLogger(__name__)


class ServingLog:
    """Sends sampled answers to the log topic without ever blocking the caller."""

    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        cfg = settings.serving
        self.settings = settings
        self.topic = cfg.log_topic
        self.rate = cfg.log_sample_rate
        self.logged = Counter("lf_serving_log_records", "answers handed to the serving log", registry=registry)
        self.dropped = Counter(
            "lf_serving_log_dropped",
            "serving-log records dropped: the buffer was full, or the broker did not take them in time",
            ["reason"],
            registry=registry,
        )
        self._stop = threading.Event()
        self._warned = -60.0
        self._producer = None
        self._poller: threading.Thread | None = None
        if self.rate > 0:
            self._producer = producer(
                settings,
                **{
                    "queue.buffering.max.messages": cfg.log_buffer,
                    "message.timeout.ms": int(cfg.log_timeout_s * 1000),
                    "linger.ms": 50,
                    "compression.type": "lz4",
                    # a report per failed record only: each report is a Python callback that takes
                    # the GIL from the thread serving requests
                    "delivery.report.only.error": True,
                    "error_cb": self._error,
                },
            )
            self._poller = threading.Thread(target=self._poll, name="serving-log", daemon=True)
            self._poller.start()

    def sampled(self) -> bool:
        """Is this request logged? (SERVING__LOG_SAMPLE_RATE)"""
        return self._producer is not None and (self.rate >= 1 or random.random() < self.rate)

    def record(self, requested_at_ms: int, users: list[dict]) -> None:
        """One record per user answer {user_id, features}, keyed by user (a user's records
        stay in order on one partition)."""
        produce = self._producer.produce  # type: ignore[union-attr]
        for answer in users:
            value = orjson.dumps({"requested_at": requested_at_ms, **answer})
            try:
                produce(self.topic, value, str(answer["user_id"]).encode(), on_delivery=self._delivered)
            except BufferError:
                self.dropped.labels("buffer_full").inc()
            else:
                self.logged.inc()

    def _delivered(self, err, _msg) -> None:
        if err is not None:
            self.dropped.labels("not_delivered").inc()

    def _error(self, err) -> None:
        now = time.monotonic()
        if now - self._warned >= 60:  # librdkafka repeats a broker's absence at every reconnect
            self._warned = now
            log.warning("serving log: Kafka at %s: %s", bootstrap(self.settings), err)

    def _poll(self) -> None:
        """Serves the delivery reports (librdkafka's own thread does the sending)."""
        while not self._stop.is_set():
            self._producer.poll(0.2)  # type: ignore[union-attr]

    def close(self, timeout_s: float = 1) -> None:
        """Stops the poller and gives the queued records `timeout_s` to go."""
        if self._producer is None:
            return
        self._stop.set()
        self._poller.join()  # type: ignore[union-attr]
        left = self._producer.flush(timeout_s)
        if left:
            self.dropped.labels("not_delivered").inc(left)
            log.warning("serving log: %d record(s) not sent at shutdown", left)
