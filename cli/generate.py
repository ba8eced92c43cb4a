"""`generate`: seeded synthetic events to a file or the events topic."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from cli.console import console, settings
from common.errors import PlatformError


def generate(
    count: Annotated[int, typer.Option(help="number of events")] = 100_000,
    out: Annotated[Path | None, typer.Option(help="JSON lines file to write")] = None,
    kafka: Annotated[bool, typer.Option(help="produce to the events topic instead")] = False,
    rate: Annotated[float, typer.Option(help="events/s to emit (0: as fast as possible)")] = 0.0,
    seed: int = 42,
    late: float = 0.005,
    out_of_order: float = 0.05,
    live: Annotated[bool, typer.Option(help="event times are the wall clock")] = False,
) -> None:
    """Write seeded synthetic events to a file or a Kafka topic."""
    from features.adapters import to_json
    from features.generator import GeneratorConfig
    from features.generator import generate as gen

    s = settings()
    if not out and not kafka:
        raise PlatformError("say where to write", "pass --out FILE or --kafka")
    cfg = GeneratorConfig(seed=seed, late=late, out_of_order=out_of_order)
    started = time.monotonic()
    if kafka:
        from common.kafka import ensure_topics, producer, send

        ensure_topics(s, [s.kafka.events_topic], s.kafka.partitions)
        prod = producer(s)
        for i, e in enumerate(gen(cfg, count, live=live), start=1):
            send(prod, s.kafka.events_topic, to_json(e), key=str(e["user_id"]).encode())
            if rate:
                ahead = i / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        prod.flush(60)
        where = f"topic {s.kafka.events_topic}"
    else:
        assert out is not None
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as fh:
            for e in gen(cfg, count, live=live):
                fh.write(to_json(e) + b"\n")
        where = str(out)
    took = time.monotonic() - started
    console.print(f"wrote {count:,} events to {where} in {took:.1f}s ({count / took:,.0f}/s)")
