"""What the exporter adds to Flink's own metrics (which Flink's Prometheus reporter serves
under their standard names): the autoscaler's view of the stream job, and the Kafka lag of
every consumer group of the platform."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from common.kafka import consumer_lag
from common.settings import Settings
from streaming.autoscaler import assess
from streaming.deployment import STREAM_PIPELINE, StreamDeployment
from streaming.flink_metrics import FlinkReader
from streaming.flink_rest import FlinkRest
from streaming.job import compiled_queries
from streaming.loader import LOADERS


class FlinkPart:
    """The autoscaler's decision on the newest job of the stream pipeline (read from Flink's
    REST API, as the supervisor reads it), and the job's checkpoint interval, which no Flink
    metric carries and the checkpoint alert is scaled by."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rest = FlinkRest(StreamDeployment(settings).rest_address)
        self.reader = FlinkReader(self.rest, STREAM_PIPELINE)
        self.previous: tuple[str, tuple[float, float]] | None = None  # the autoscaler's last poll, by job

    def collect(self) -> Iterator[Metric]:
        job = self.reader.job() if self.rest.reachable() else None
        if job is None or not job.samples:
            return
        # the job's name as Flink's reporter writes label values, so rules can join on it
        labels = {"job_name": re.sub(r"[^a-zA-Z0-9:_]", "_", job.job_name)}
        if job.checkpoint_interval_s:
            yield _gauge("lf_stream_checkpoint_interval_seconds", "The stream job's checkpoint interval",
                         job.checkpoint_interval_s, labels)  # fmt: skip
        previous = self.previous[1] if self.previous and self.previous[0] == job.job_id else None
        decision, kept = assess(job, self.settings, previous, time.time())
        self.previous = (job.job_id, kept)
        yield _gauge("lf_stream_parallelism", "The stream job's parallelism", decision.current, labels)
        yield _gauge("lf_stream_needed_parallelism", "The parallelism the autoscaler finds the job needs",
                     decision.parallelism, labels)  # fmt: skip


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
