"""The generator is seeded, skewed, and makes disorder and lateness on request."""

from collections import Counter

from features.events import EVENT_TYPES
from features.generator import GeneratorConfig, generate


def test_seeded_and_complete():
    a = list(generate(GeneratorConfig(seed=7), 20_000))
    assert a == list(generate(GeneratorConfig(seed=7), 20_000))
    assert {e["event_type"] for e in a} == set(EVENT_TYPES)
    assert all(e["item_id"] is None for e in a if e["event_type"] in ("search", "login"))
    assert all(e["query"] for e in a if e["event_type"] == "search")


def test_zipf_skew_and_lateness():
    cfg = GeneratorConfig(seed=1, late=0.01, out_of_order=0.05)
    ev = list(generate(cfg, 50_000))
    top = Counter(e["user_id"] for e in ev).most_common(1)[0][1]
    assert top > 50_000 / cfg.users * 20  # heavy users exist
    behind = [e for i, e in enumerate(ev) if e["event_time"] < cfg.start_ms + int(i * 1000 / cfg.events_per_second)]
    late = [
        e
        for i, e in enumerate(ev)
        if cfg.start_ms + int(i * 1000 / cfg.events_per_second) - e["event_time"] >= cfg.late_min_ms
    ]
    assert 0.04 < len(behind) / len(ev) < 0.08 and 0.005 < len(late) / len(ev) < 0.015
