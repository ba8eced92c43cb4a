"""The embedded broker's CPU per event by the producers' linger and the consumers' fetch
minimum and wait.

A producer writes small events at --rate for --seconds into a topic of 2 partitions, which
--consumers consumers (as Flink's source and the two loaders) read as they arrive. The broker
(the platform's Apache Kafka, started here on free ports) is measured from /proc: its CPU
seconds per event. Its cost follows the number of requests more than the number of records.
A shop's producer keeps the client's linger (5 ms); the platform sets its consumers' fetch
minimum and wait (`KAFKA__*_FETCH_MIN_BYTES`, `KAFKA__*_FETCH_MAX_WAIT_MS`): a fetch is
answered once it has that many bytes or has waited that long. The first rows are the floor:
the broker idle (its CPU over a row's time, per event of a row), then the producer alone.
Each row shows the JIT compiler's share: it goes on compiling for minutes after a start.

    .venv/bin/python bench/broker_bench.py [--rate 10000] [--seconds 10] [--consumers 3] [--warmup 90]
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

from bench.machine import hardware, jit_share, load_average, stat_cpu_s, thread_cpu_s  # noqa: E402
from common.kafka import bootstrap, ensure_topics, send  # noqa: E402
from common.services import kafka_service  # noqa: E402
from tests.conftest import isolated  # noqa: E402

EVENT = b'{"event_id":"e-0000000","user_id":123456,"event_type":"click","item_id":1234567,"event_time":1795734601717}'
# (producer linger ms, consumers' fetch min bytes, fetch wait ms, with consumers): a shop's
# producer alone, then with the consumers answered at once (the defaults), or once they have
# 16 or 64 KB; then the platform's own producers (linger 20 ms) and longer
SETTINGS = [
    (5, 1, 50, False),
    (5, 1, 50, True),
    (5, 16 << 10, 50, True),
    (5, 64 << 10, 20, True),
    (5, 64 << 10, 100, True),
    (20, 1, 50, True),
    (50, 1, 100, True),
]


def cpu_s(pid: int) -> tuple[float, float]:
    """The broker's CPU seconds so far, and its JIT compilers' share of them."""
    return stat_cpu_s(Path(f"/proc/{pid}/stat").read_text()), jit_share(thread_cpu_s(pid))


def since(pid: int, before: tuple[float, float]) -> tuple[float, float]:
    now = cpu_s(pid)
    return now[0] - before[0], now[1] - before[1]


def idle(pid: int, seconds: float) -> tuple[float, float]:
    """The broker's CPU seconds (and its JIT's) with no client."""
    before = cpu_s(pid)
    time.sleep(seconds)
    return since(pid, before)


def run(
    settings, pid: int, topic: str, linger: int, min_bytes: int, wait: int, rate: float, seconds: float, consumers: int
) -> tuple[int, tuple[float, float], list[int]]:
    """Events produced, the broker's CPU seconds (and its JIT's) meanwhile, and what each
    consumer read."""
    ensure_topics(settings, [topic], 2)
    stop = threading.Event()
    read = [0] * consumers

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
    threads = [threading.Thread(target=consume, args=(k,)) for k in range(consumers)]
    for t in threads:
        t.start()
    p = Producer({"bootstrap.servers": bootstrap(settings), "linger.ms": linger})
    time.sleep(1)
    before, started = cpu_s(pid), time.monotonic()
    while time.monotonic() - started < seconds:
        for _ in range(int(rate) // 100):
            send(p, topic, EVENT, key=str(sent % 5000).encode())
            sent += 1
        p.poll(0)
        time.sleep(max(0.0, sent / rate - (time.monotonic() - started)))
    p.flush(30)
    drained_by = time.monotonic() + 30
    stop.set()
    for t in threads:
        t.join()
    return sent, since(pid, before), read


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=10_000, help="events/s")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--consumers", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=90, help="seconds unmeasured first, while the JIT compiles")
    a = ap.parse_args()
    print(f"hardware: {hardware()} | load average before: {load_average()}")
    home = Path(tempfile.mkdtemp(prefix="lf-broker-bench-"))
    settings, _ = isolated(home)
    broker = kafka_service(settings)
    broker.start()
    print(
        f"{a.rate:,.0f} events/s for {a.seconds:.0f} s per row (after {a.warmup:.0f} s unmeasured), "
        f"{a.consumers} consumers, broker: Apache Kafka (KRaft); µs of broker CPU per event, and of it the JIT's"
    )
    head = ("linger ms", "fetch min B", "fetch wait ms", "consumers", "events", "broker CPU s", "µs/event", "JIT")
    head += ("read by all",)
    widths = (9, 11, 13, 9, 9, 12, 9, 6, 11)
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))

    def row(cells: tuple, events: int, used: tuple[float, float], ok: str) -> None:
        per = [1e6 * u / events for u in used]
        print(" ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=False)), end=" ")
        print(f"{events:>9,} {used[0]:>12.1f} {per[0]:>9.1f} {per[1]:>6.1f} {ok:>11}")

    try:  # a first run unmeasured: the broker's JIT compiles its code then
        run(settings, broker.pid(), "bench-warmup", 5, 1, 50, a.rate, a.warmup, a.consumers)
        # idle: its CPU over a row's time, per event of a row
        row(("idle", "", "", 0), int(a.rate * a.seconds), idle(broker.pid(), a.seconds), "")
        for i, (linger, min_bytes, wait, consumed) in enumerate(SETTINGS):
            n = a.consumers if consumed else 0
            sent, used, read = run(settings, broker.pid(), f"bench-{i}", linger, min_bytes, wait, a.rate, a.seconds, n)
            ok = "yes" if all(r >= sent for r in read) else f"no {read}"
            row((linger, f"{min_bytes:,}", wait, n), sent, used, ok)
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
