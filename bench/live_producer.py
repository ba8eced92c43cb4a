"""The stream benchmark's producer: live generated events (event time = wall clock when
generated) to the events topic at a fixed rate, in a process of its own. Prints one JSON
line: events, seconds, and the delivery latency histogram (produce() call to broker ack, ms)
of the events after the warm-up.
It is a shop's producer: the Kafka client's default settings (linger 5 ms), not the
platform's own producers' (KAFKA__EVENTS_LINGER_MS), since the platform must not depend on
its producers batching for it.
    python -m bench.live_producer --rate 10000 --seconds 300 [--warmup 30] [--users 100000]
    (settings from LAMBDA_FEATURES_*)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Producer  # noqa: E402

from common.kafka import bootstrap  # noqa: E402
from common.settings import load_settings  # noqa: E402
from features.adapters import to_json  # noqa: E402
from features.generator import GeneratorConfig, generate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--warmup", type=float, default=0.0, help="seconds produced before the acks are timed")
    ap.add_argument("--users", type=int, default=100_000)
    args = ap.parse_args()
    s = load_settings()
    topic = s.kafka.events_topic
    p = Producer({"bootstrap.servers": bootstrap(s)})
    acked: Counter = Counter()
    failed = 0

    timed_from_ms = int((time.time() + args.warmup) * 1000)

    def delivered(err, msg) -> None:
        nonlocal failed
        if err is None:
            if (created := msg.timestamp()[1]) >= timed_from_ms:
                acked[int(time.time() * 1000) - created] += 1
        else:
            failed += 1

    count = int(args.rate * args.seconds)
    started = time.monotonic()
    for i, e in enumerate(generate(GeneratorConfig(seed=args.seed, users=args.users), count, live=True), start=1):
        while True:
            try:
                p.produce(topic, to_json(e), key=str(e["user_id"]).encode(), on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let deliveries drain
                p.poll(0.05)
        if i % 100 == 0:  # deliveries are timed when poll serves them: wait in poll, not in sleep
            p.poll(0)
            while (ahead := i / args.rate - (time.monotonic() - started)) > 0:
                p.poll(ahead)
    p.flush(120)
    took = time.monotonic() - started
    print(json.dumps({"events": count, "seconds": took, "failed": failed, "ack_ms": acked}))


if __name__ == "__main__":
    main()
