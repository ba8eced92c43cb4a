"""The embedded broker (Apache Kafka, one KRaft node): it keeps topics and offsets across a
restart on its data directory, and refuses to start on a full disk or an unwritable data
directory, naming the path."""

from __future__ import annotations

import shutil

import pytest

from common.errors import PlatformError
from common.kafka import ensure_topics, producer, read_all
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
