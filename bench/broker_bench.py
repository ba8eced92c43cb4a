"""The embedded broker's CPU per event by the producers' linger and the consumers' fetch
minimum and wait.

A producer writes small events at --rate for --seconds into a topic of 2 partitions, which
--consumers consumers (as Flink's source and the two loaders) read as they arrive. The broker
(the platform's Apache Kafka, started here on free ports) is measured from /proc: its CPU
seconds per event. Its cost follows the number of requests more than the number of records.
A shop's producer keeps the client's linger (5 ms); the platform sets its consumers' fetch
minimum and wait (`KAFKA__*_FETCH_MIN_BYTES`, `KAFKA__*_FETCH_MAX_WAIT_MS`): a fetch is
answered once it has that many bytes or has waited that long.

    .venv/bin/python bench/broker_bench.py [--rate 10000] [--seconds 10] [--consumers 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

from bench.machine import TICK, hardware, load_average  # noqa: E402
from common.kafka import bootstrap, ensure_topics, send  # noqa: E402
from common.services import kafka_service  # noqa: E402
from tests.conftest import isolated  # noqa: E402

EVENT = b'{"event_id":"e-0000000","user_id":123456,"event_type":"click","item_id":1234567,"event_time":1795734601717}'
# (producer linger ms, consumers' fetch min bytes, fetch wait ms): a shop's producer with the
# consumers answered at once (the defaults until 2026-12-07), or once they have 16 or 64 KB;
# then the platform's own producers (linger 20 ms) and longer
SETTINGS = [(5, 1, 50), (5, 16 << 10, 50), (5, 64 << 10, 100), (20, 1, 50), (50, 1, 100)]


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run(settings, pid: int, topic: str, linger: int, min_bytes: int, wait: int, a) -> tuple[int, float, list[int]]:
    """Events produced, the broker's CPU seconds meanwhile, and what each consumer read."""
    ensure_topics(settings, [topic], 2)
    stop = threading.Event()
    read = [0] * a.consumers

    def consume(k: int) -> None:
        c = Consumer(
            {
                "bootstrap.servers": bootstrap(settings),
                "group.id": f"{topic}-{k}",
                "fetch.wait.max.ms": wait,
                "fetch.min.bytes": min_bytes,
            }
        )
        c.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
        while not stop.is_set() or read[k] < sent:
            read[k] += sum(1 for m in c.consume(1000, 0.2) if not m.error())
            if stop.is_set() and time.monotonic() > drained_by:
                break
        c.close()

    sent, drained_by = 0, float("inf")
    threads = [threading.Thread(target=consume, args=(k,)) for k in range(a.consumers)]
    for t in threads:
        t.start()
    p = Producer({"bootstrap.servers": bootstrap(settings), "linger.ms": linger})
    time.sleep(1)
    before, started = cpu_s(pid), time.monotonic()
    while time.monotonic() - started < a.seconds:
        for _ in range(int(a.rate) // 100):
            send(p, topic, EVENT, key=str(sent % 5000).encode())
            sent += 1
        p.poll(0)
        time.sleep(max(0.0, sent / a.rate - (time.monotonic() - started)))
    p.flush(30)
    drained_by = time.monotonic() + 30
    stop.set()
    for t in threads:
        t.join()
    return sent, cpu_s(pid) - before, read


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=10_000, help="events/s")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--consumers", type=int, default=3)
    a = ap.parse_args()
    print(f"hardware: {hardware()} | load average before: {load_average()}")
    home = Path(tempfile.mkdtemp(prefix="lf-broker-bench-"))
    settings, _ = isolated(home)
    broker = kafka_service(settings)
    broker.start()
    print(
        f"{a.rate:,.0f} events/s for {a.seconds:.0f} s per row (after 15 s unmeasured), {a.consumers} consumers, "
        "broker: Apache Kafka (KRaft)"
    )
    head = ("linger ms", "fetch min B", "fetch wait ms", "events", "broker CPU s", "µs/event", "read by all")
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, (9, 11, 13, 9, 12, 9, 11), strict=True)))
    try:  # a first run unmeasured: the broker's JIT compiles its code then
        run(settings, broker.pid(), "bench-warmup", 5, 1, 50, argparse.Namespace(**{**vars(a), "seconds": 15}))
        for i, (linger, min_bytes, wait) in enumerate(SETTINGS):
            sent, used, read = run(settings, broker.pid(), f"bench-{i}", linger, min_bytes, wait, a)
            ok = "yes" if all(r >= sent for r in read) else f"no {read}"
            print(
                f"{linger:>9} {min_bytes:>11,} {wait:>13} {sent:>9,} {used:>12.1f} {1e6 * used / sent:>9.1f} {ok:>11}"
            )
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
