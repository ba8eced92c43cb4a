"""The stream job's metrics for the exporter: Flink's own (from its REST API, under the
reporter's names), and the platform's (lf_stream_*, lf_kafka_consumer_lag)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from common.kafka import consumer_lag
from common.settings import Settings
from streaming.autoscaler import assess
from streaming.deployment import STREAM_PIPELINE, FlinkRest, StreamDeployment
from streaming.flink_metrics import FlinkReader, Sample
from streaming.job import compiled_queries
from streaming.loader import LOADERS


def _families(samples: list[Sample]) -> Iterator[GaugeMetricFamily]:
    """Flink's reporter exports counters and gauges alike as Prometheus gauges."""
    by_name: dict[str, GaugeMetricFamily] = {}
    for s in samples:
        family = by_name.get(s.name)
        if family is None:
            family = by_name[s.name] = GaugeMetricFamily(s.name, f"Flink metric {s.metric}", labels=list(s.labels))
        family.add_metric(list(s.labels.values()), s.value)
    yield from by_name.values()


class FlinkPart:
    """The newest job of the stream pipeline at the Flink REST address the settings name."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rest = FlinkRest(StreamDeployment(settings).rest_address)
        self.reader = FlinkReader(self.rest, STREAM_PIPELINE)
        self.previous: tuple[str, tuple[float, float]] | None = None  # the autoscaler's last poll, by job

    def collect(self) -> Iterator[Metric]:
        running = GaugeMetricFamily("lf_stream_job_running", "1 while the stream job is RUNNING", labels=["job_name"])
        job = None
        if self.rest.reachable():
            yield from _families(self.reader.jobmanager())
            job = self.reader.job()
        running.add_metric([STREAM_PIPELINE], int(job is not None and job.state == "RUNNING"))
        yield running
        if job is None or not job.samples:
            return
        yield from _families(job.samples)
        labels = {"job_name": job.job_name}
        yield _counter("lf_stream_events_in", "Events the stream job read (rejected ones included)",
                       job.events_in, labels)  # fmt: skip
        yield _counter("lf_stream_events_out", "Feature changes the stream job wrote to the changelog topics",
                       job.feature_changes_out, labels)  # fmt: skip
        if job.watermark_ms is not None:
            yield _gauge("lf_stream_watermark_timestamp_seconds", "The stream job's watermark (lowest of its sources)",
                         job.watermark_ms / 1000, labels)  # fmt: skip
            yield _gauge("lf_stream_event_time_lag_seconds", "Now minus the stream job's watermark",
                         time.time() - job.watermark_ms / 1000, labels)  # fmt: skip
        if job.checkpoint_interval_s:
            yield _gauge("lf_stream_checkpoint_interval_seconds", "The stream job's checkpoint interval",
                         job.checkpoint_interval_s, labels)  # fmt: skip
        previous = self.previous[1] if self.previous and self.previous[0] == job.job_id else None
        decision, kept = assess(job, self.settings, previous, time.time())
        self.previous = (job.job_id, kept)
        yield _gauge("lf_stream_parallelism", "The stream job's parallelism", decision.current, labels)
        yield _gauge("lf_stream_needed_parallelism", "The parallelism the autoscaler finds the job needs",
                     decision.parallelism, labels)  # fmt: skip


def _counter(name: str, doc: str, value: float, labels: dict[str, str]) -> CounterMetricFamily:
    c = CounterMetricFamily(name, doc, labels=list(labels))
    c.add_metric(list(labels.values()), value)
    return c


def _gauge(name: str, doc: str, value: float, labels: dict[str, str]) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=list(labels))
    g.add_metric(list(labels.values()), value)
    return g


def kafka_lag(settings: Settings) -> GaugeMetricFamily:
    """Per partition: what the stream job (events topic) and each loader (its changelog topics)
    have not committed yet. Flink commits its offsets at each checkpoint."""
    k = settings.kafka
    lag = GaugeMetricFamily(
        "lf_kafka_consumer_lag", "Messages a consumer group has not committed", labels=["group", "topic", "partition"]
    )
    queries = [q for _, q in compiled_queries(settings)]
    loaders = [
        (f"{k.group_id}-{role}", [k.features_topic_prefix + q.output for q in queries if loader.wants(q)])
        for role, loader in LOADERS.items()
    ]
    for group, topics in ((k.group_id, [k.events_topic]), *loaders):
        for (topic, partition), n in sorted(consumer_lag(settings, group, topics).items()):
            lag.add_metric([group, topic, str(partition)], n)
    return lag
