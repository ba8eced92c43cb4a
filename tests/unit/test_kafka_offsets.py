"""Reading a group's committed offsets while the broker's group coordinator is still loading."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from common import kafka


class Consumer:
    """Answers `committed` with the given errors first, then with the offsets."""

    def __init__(self, *errors: int) -> None:
        self.errors = list(errors)
        self.calls = 0

    def committed(self, parts: list, timeout: float) -> list:
        self.calls += 1
        if self.errors:
            raise KafkaException(KafkaError(self.errors.pop(0)))
        return parts


def test_waits_while_the_coordinator_loads():
    c = Consumer(KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS)
    assert kafka.stored_offsets(c, ["p0"]) == ["p0"]
    assert c.calls == 3


def test_other_errors_are_raised_at_once():
    c = Consumer(KafkaError.UNKNOWN_TOPIC_OR_PART)
    with pytest.raises(KafkaException):
        kafka.stored_offsets(c, ["p0"])
    assert c.calls == 1


def test_gives_up_after_its_wait(monkeypatch):
    monkeypatch.setattr(kafka, "COORDINATOR_WAIT_S", 0.3)
    c = Consumer(*[KafkaError.COORDINATOR_NOT_AVAILABLE] * 100)
    with pytest.raises(KafkaException):
        kafka.stored_offsets(c, ["p0"])
    assert 1 < c.calls < 100


def test_no_partitions_no_call():
    c = Consumer(KafkaError.NOT_COORDINATOR)
    assert kafka.stored_offsets(c, []) == []
    assert c.calls == 0
