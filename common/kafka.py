"""Kafka clients (confluent-kafka): topics, a producer, and reachability checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from common.errors import PlatformError
from common.settings import Settings


def bootstrap(settings: Settings) -> str:
    return settings.kafka.bootstrap or f"127.0.0.1:{settings.kafka.local_port}"


def ensure_topics(
    settings: Settings, topics: Iterable[str], partitions: int, configs: dict[str, dict[str, str]] | None = None
) -> None:
    """Create the topics that do not exist yet (with their `configs`, by topic); fail clearly
    when the broker is unreachable."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap(settings)})
    try:
        existing = set(admin.list_topics(timeout=10).topics)
    except KafkaException as e:
        raise PlatformError(
            f"cannot reach Kafka at {bootstrap(settings)}: {e.args[0]}",
            "check LAMBDA_FEATURES_KAFKA__BOOTSTRAP, or unset it to use the platform's local broker",
        ) from None
    configs = configs or {}
    new = [NewTopic(t, num_partitions=partitions, config=configs.get(t, {})) for t in topics if t not in existing]
    if new:
        futures = admin.create_topics(new)
        for topic, fut in futures.items():
            try:
                fut.result()
            except KafkaException as e:
                if "TOPIC_ALREADY_EXISTS" not in str(e):
                    raise PlatformError(f"cannot create Kafka topic {topic}: {e}") from None


def producer(settings: Settings, **extra: object):
    from confluent_kafka import Producer

    # murmur2 is what the Java client uses, so a user's events land where Flink would put them.
    conf = {
        "bootstrap.servers": bootstrap(settings),
        "partitioner": "murmur2_random",
        "linger.ms": settings.kafka.events_linger_ms,
        "enable.idempotence": True,  # a retry after a lost acknowledgment writes nothing twice
    }
    conf.update(extra)
    return Producer(conf)


def send(prod, topic: str, value: bytes, **kw: object) -> None:
    """prod.produce(), waiting for deliveries while the producer's local queue is full (a
    broker slower to acknowledge than the caller produces)."""
    while True:
        try:
            prod.produce(topic, value, **kw)
            break
        except BufferError:
            prod.poll(0.5)
    prod.poll(0)


COORDINATOR_WAIT_S = 60


def stored_offsets(consumer, parts: list, timeout_s: float = 10) -> list:
    """The consumer's committed offsets of `parts`, waiting up to COORDINATOR_WAIT_S while
    the broker is still loading its group coordinator, as it does for seconds after it
    starts (librdkafka does not retry this call)."""
    from confluent_kafka import KafkaError, KafkaException
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

    starting = {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }

    def coordinator_starting(e: BaseException) -> bool:
        return isinstance(e, KafkaException) and e.args[0].code() in starting

    if not parts:
        return []
    retrying = Retrying(
        retry=retry_if_exception(coordinator_starting),
        stop=stop_after_delay(COORDINATOR_WAIT_S),
        wait=wait_exponential(multiplier=0.1, max=2),
        reraise=True,
    )
    return retrying(consumer.committed, parts, timeout=timeout_s)


def partitions_of(settings: Settings, topic: str) -> list[int]:
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": bootstrap(settings)}).list_topics(topic, timeout=10)
    return sorted(md.topics[topic].partitions)


def consumer_lag(settings: Settings, group: str, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """Per (topic, partition): messages the group has not committed yet (all of them when it
    committed nothing). Raises KafkaException when the broker cannot be reached."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap(settings), "group.id": group})
    try:
        md = consumer.list_topics(timeout=5).topics
        parts = [TopicPartition(t, p) for t in topics if t in md for p in sorted(md[t].partitions)]
        lag = {}
        for tp in consumer.committed(parts, timeout=5) if parts else []:
            low, high = consumer.get_watermark_offsets(tp, timeout=5)
            lag[(tp.topic, tp.partition)] = max(0, high - (tp.offset if tp.offset >= 0 else low))
        return lag
    finally:
        consumer.close()


def _to_end(consumer, starts: dict[tuple[str, int], int], timeout_s: float):
    """(topic, partition, offset, value) of each message from each start to its partition's end,
    as a fetch reports the end (enable.partition.eof); the partitions are read together."""
    import time

    from confluent_kafka import KafkaError, TopicPartition

    consumer.assign([TopicPartition(t, p, o) for (t, p), o in starts.items()])
    pending = set(starts)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        topic, partition = msg.topic(), msg.partition()
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                pending.discard((topic, partition))
                continue
            raise PlatformError(f"cannot read Kafka topic {topic} partition {partition}: {msg.error()}")
        yield topic, partition, msg.offset(), msg.value()
    if pending:
        topic, partition = min(pending)
        raise PlatformError(f"cannot read to the end of Kafka topic {topic} partition {partition}")


def _reader(settings: Settings, group: str = "lambda-features-reader"):
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": bootstrap(settings),
            "group.id": group,
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )


def _tails(
    settings: Settings, topics: Iterable[str], timeout_s: float = 30
) -> dict[tuple[str, int], tuple[int, bytes] | None]:
    """Per (topic, partition) of the topics that exist, its last message (offset, value), None
    when it has none, read from the partition's reported end on to the end a fetch reports."""
    from confluent_kafka import TopicPartition

    consumer = _reader(settings)
    try:
        md = consumer.list_topics(timeout=10).topics
        starts = {}
        for t in (t for t in topics if t in md):
            for p in sorted(md[t].partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)
                starts[(t, p)] = max(low, high - 1)
        out: dict[tuple[str, int], tuple[int, bytes] | None] = dict.fromkeys(starts)
        for topic, partition, offset, value in _to_end(consumer, starts, timeout_s):
            out[(topic, partition)] = (offset, value)
        return out
    finally:
        consumer.close()


def last_messages(settings: Settings, topic: str, timeout_s: float = 30) -> dict[int, tuple[int, bytes]]:
    """Per partition of the topic, its last message (offset, value); empty partitions are left out."""
    return {p: m for (_, p), m in _tails(settings, [topic], timeout_s).items() if m}


def partition_ends(settings: Settings, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """Per (topic, partition) of the topics, the offset after its last message (0 when empty)."""
    return {tp: m[0] + 1 if m else 0 for tp, m in _tails(settings, topics).items()}


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Per partition, the offset after its last message (0 when empty)."""
    return {p: end for (_, p), end in partition_ends(settings, [topic]).items()}


def read_all(settings: Settings, topic: str, partition: int = 0, timeout_s: float = 30) -> list[tuple[int, bytes]]:
    """Every message (offset, value) of one partition, from its start to its end."""
    from confluent_kafka import TopicPartition

    consumer = _reader(settings)
    try:
        low, _ = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        return [(offset, value) for *_, offset, value in _to_end(consumer, {(topic, partition): low}, timeout_s)]
    finally:
        consumer.close()


def consume_new(
    settings: Settings, topic: str, group: str, handle: Callable[[list[tuple[int, int, bytes]]], None], timeout_s=60
) -> int:
    """Hands `handle` the messages (partition, offset, value) of the topic the group has not
    committed yet, up to each partition's end, and commits them once it returns: at least
    once, so `handle` writes idempotently. Returns how many there were (0 without the topic)."""
    from confluent_kafka import TopicPartition

    consumer = _reader(settings, group)
    try:
        md = consumer.list_topics(timeout=10).topics
        if topic not in md:
            return 0
        parts = [TopicPartition(topic, p) for p in sorted(md[topic].partitions)]
        starts = {}
        for tp in stored_offsets(consumer, parts):
            low, _ = consumer.get_watermark_offsets(tp, timeout=10)
            starts[(topic, tp.partition)] = tp.offset if tp.offset >= 0 else low
        messages = [(p, o, v) for _, p, o, v in _to_end(consumer, starts, timeout_s)]
        if messages:
            handle(messages)
            ends: dict[int, int] = {}
            for p, o, _ in messages:
                ends[p] = max(ends.get(p, 0), o + 1)
            consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in ends.items()], asynchronous=False)
        return len(messages)
    finally:
        consumer.close()
