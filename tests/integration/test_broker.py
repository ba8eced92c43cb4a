"""The embedded broker (Apache Kafka, one KRaft node): it keeps topics and offsets across a
restart on its data directory, serves its metrics to Prometheus, and refuses to start on a
full disk or an unwritable data directory, naming the path."""

from __future__ import annotations

import shutil

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from common.errors import PlatformError
from common.kafka import ensure_topics, producer, read_all
from common.prometheus import scrape_targets
from common.services import kafka_service, process_running

pytestmark = pytest.mark.own_broker


def test_unwritable_data_directory_is_named(settings):
    settings.home.mkdir(parents=True)
    settings.kafka_dir.write_text("a file where the broker's data directory should be")
    with pytest.raises(PlatformError, match=f"cannot write to the data directory {settings.kafka_dir}"):
        kafka_service(settings).start()


def test_full_disk_is_named(settings):
    settings.home.mkdir(parents=True)
    # more than the whole disk: the free space other processes leave moves while the test runs
    more_than_all = shutil.disk_usage(settings.home).total // (1 << 20) + 1
    full = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"local_min_free_mb": more_than_all})})
    with pytest.raises(PlatformError, match=f"the disk of {settings.kafka_dir} is full"):
        kafka_service(full).start()


def test_topics_and_offsets_outlive_a_restart(settings):
    broker = kafka_service(settings)
    assert broker.start()
    ensure_topics(settings, ["kept"], 1)
    p = producer(settings)
    for i in range(100):
        p.produce("kept", str(i).encode())
    assert p.flush(30) == 0
    pid = broker.pid()
    broker.stop()
    assert not process_running(pid)
    assert broker.start()
    assert [v for _, v in read_all(settings, "kept")] == [str(i).encode() for i in range(100)]
    broker.stop()


def test_the_broker_serves_the_metrics_its_alerts_read(settings):
    """The JMX exporter agent in the broker's JVM, on the port Prometheus scrapes as
    lambda-features-kafka: the names of the partitions-at-risk and request-queue alerts."""
    broker = kafka_service(settings)
    assert broker.start()
    try:
        ensure_topics(settings, ["scraped"], 1)
        assert scrape_targets(settings)["lambda-features-kafka"] == settings.monitoring.kafka_port
        text = requests.get(f"http://127.0.0.1:{settings.monitoring.kafka_port}/metrics", timeout=10).text
        samples = {s.name: s for f in text_string_to_metric_families(text) for s in f.samples}
        assert samples["kafka_server_replicamanager_underreplicatedpartitions"].value == 0
        assert samples["kafka_controller_kafkacontroller_offlinepartitionscount"].value == 0
        assert any(name.startswith("kafka_network_requestmetrics_requestqueuetimems") for name in samples)
    finally:
        broker.stop()
