"""A seeded generator of canonical events with realistic skew, disorder and lateness."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from features.adapters import Event

TYPE_WEIGHTS = {
    "click": 0.68,
    "cart": 0.08,
    "remove_cart": 0.03,
    "purchase": 0.04,
    "fav": 0.04,
    "search": 0.09,
    "login": 0.04,
}
BRANDS = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka", "tyrell", "cyberdyne")
WORDS = ("shoes", "phone", "red", "dress", "laptop", "case", "kids", "gift", "sale", "coffee", "lamp", "bag")


@dataclass(frozen=True)
class GeneratorConfig:
    seed: int = 42
    users: int = 5_000
    items: int = 20_000
    categories: int = 300
    zipf_a: float = 1.3
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    events_per_second: float = 50.0  # event-time density, not the emission rate
    out_of_order: float = 0.05  # share shifted back by less than the watermark delay
    late: float = 0.005  # share shifted back far enough to be late
    max_disorder_ms: int = 2_000
    late_min_ms: int = 60_000
    late_max_ms: int = 900_000


def _zipf(rng: np.random.Generator, a: float, n: int, size: int) -> np.ndarray:
    """Zipf-distributed ids in 1..n (rank 1 is the most frequent)."""
    ranks = np.arange(1, n + 1, dtype=np.float64)
    p = ranks**-a
    p /= p.sum()
    return rng.choice(n, size=size, p=p) + 1


def generate(cfg: GeneratorConfig, count: int, live: bool = False) -> Iterator[Event]:
    """Yield `count` events. With live=True event times are the wall clock at emission."""
    rng = np.random.default_rng(cfg.seed)
    types = list(TYPE_WEIGHTS)
    weights = np.array(list(TYPE_WEIGHTS.values()))
    weights /= weights.sum()
    chunk = 10_000
    cart: dict[int, list[int]] = {}
    produced = 0
    item_price = np.round(rng.lognormal(3.0, 1.0, cfg.items + 1), 2)
    item_cat = rng.integers(1, cfg.categories + 1, cfg.items + 1)
    item_brand = rng.integers(0, len(BRANDS), cfg.items + 1)
    step = 1000.0 / cfg.events_per_second
    while produced < count:
        n = min(chunk, count - produced)
        users = _zipf(rng, cfg.zipf_a, cfg.users, n)
        items = _zipf(rng, cfg.zipf_a * 0.9, cfg.items, n)
        kinds = rng.choice(len(types), size=n, p=weights)
        shift = rng.random(n)
        disorder = rng.integers(0, cfg.max_disorder_ms, n)
        lateness = rng.integers(cfg.late_min_ms, cfg.late_max_ms, n)
        words = rng.integers(0, len(WORDS), (n, 2))
        for i in range(n):
            seq = produced + i
            if live:
                t = int(time.time() * 1000)
            else:
                t = cfg.start_ms + int(seq * step)
                if shift[i] < cfg.late:
                    t -= int(lateness[i])
                elif shift[i] < cfg.late + cfg.out_of_order:
                    t -= int(disorder[i])
            user = int(users[i])
            etype = types[kinds[i]]
            item: int | None = int(items[i])
            if etype in ("remove_cart", "purchase") and cart.get(user):
                item = cart[user][-1] if etype == "purchase" else cart[user][0]
                cart[user].remove(item)
            elif etype == "cart":
                cart.setdefault(user, []).append(item)
                if len(cart[user]) > 20:
                    cart[user].pop(0)
            query = None
            if etype in ("search", "login"):
                item = None
                if etype == "search":
                    query = f"{WORDS[words[i][0]]} {WORDS[words[i][1]]}"
            yield {
                "event_id": f"g{cfg.seed}-{seq}",
                "user_id": user,
                "item_id": item,
                "category_id": None if item is None else int(item_cat[item]),
                "brand": None if item is None else BRANDS[item_brand[item]],
                "price": None if item is None else float(item_price[item]),
                "event_type": etype,
                "query": query,
                "event_time": t,
            }
        produced += n
