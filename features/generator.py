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


def zipf_ids(rng: np.random.Generator, a: float, n: int, size: int) -> np.ndarray:
    """Zipf-distributed ids in 1..n (rank 1 is the most frequent)."""
    ranks = np.arange(1, n + 1, dtype=np.float64)
    p = ranks**-a
    p /= p.sum()
    return rng.choice(n, size=size, p=p) + 1


def _items(rng: np.random.Generator, cfg: GeneratorConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each item's price, category and brand index (arrays indexed by item_id), the generator's first draws."""
    price = np.round(rng.lognormal(3.0, 1.0, cfg.items + 1), 2)
    category = rng.integers(1, cfg.categories + 1, cfg.items + 1)
    brand = rng.integers(0, len(BRANDS), cfg.items + 1)
    return price, category, brand


def generate(cfg: GeneratorConfig, count: int, live: bool = False) -> Iterator[Event]:
    """Yield `count` events. With live=True event times are the wall clock at emission."""
    rng = np.random.default_rng(cfg.seed)
    types = list(TYPE_WEIGHTS)
    weights = np.array(list(TYPE_WEIGHTS.values()))
    weights /= weights.sum()
    chunk = 10_000
    cart: dict[int, list[int]] = {}
    produced = 0
    item_price, item_cat, item_brand = _items(rng, cfg)
    step = 1000.0 / cfg.events_per_second
    while produced < count:
        n = min(chunk, count - produced)
        users = zipf_ids(rng, cfg.zipf_a, cfg.users, n)
        items = zipf_ids(rng, cfg.zipf_a * 0.9, cfg.items, n)
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


@dataclass(frozen=True)
class GeneratedCatalogue:
    """Two versions of an item catalogue for generated events, as rows of `catalog load`."""

    first: list[dict]  # every known item, as the events describe it
    second: list[dict]  # the items whose brand or price changed, whole rows
    unknown: frozenset[int]  # items of the events left out of the catalogue
    unknown_events: int  # events whose item is unknown
    item_events: int  # events with an item


def generate_catalogue(
    cfg: GeneratorConfig, item_events: dict[int, int], unknown_share: float = 0.005, changed_share: float = 0.1
) -> GeneratedCatalogue:
    """A catalogue of the items that events generated with `cfg` use (item -> events). The least-used
    items, up to `unknown_share` of those events, are left out; a second version gives a new brand to
    half of `changed_share` of the known items and a new price to the other half."""
    price, category, brand = _items(np.random.default_rng(cfg.seed), cfg)
    total = sum(item_events.values())
    unknown: set[int] = set()
    left_out = 0
    for item, n in sorted(item_events.items(), key=lambda kv: (kv[1], kv[0])):
        if left_out + n > unknown_share * total:
            break
        unknown.add(item)
        left_out += n
    known = sorted(set(item_events) - unknown)
    rng = np.random.default_rng(cfg.seed + 1)

    def row(item: int, b: int, p: float) -> dict:
        return {
            "item_id": item,
            "category_id": int(category[item]),
            "brand": BRANDS[b],
            "price": round(p, 2),
            "title": f"{BRANDS[b]} {WORDS[item % len(WORDS)]} {item}",
        }

    first = [row(i, int(brand[i]), float(price[i])) for i in known]
    changed = sorted(rng.choice(known, size=int(len(known) * changed_share), replace=False).tolist()) if known else []
    second = []
    for k, item in enumerate(changed):
        if k % 2:  # a new price, 30% off to 30% up
            second.append(row(item, int(brand[item]), max(0.01, float(price[item]) * rng.uniform(0.7, 1.3))))
        else:  # a new brand
            second.append(
                row(item, (int(brand[item]) + int(rng.integers(1, len(BRANDS)))) % len(BRANDS), float(price[item]))
            )
    return GeneratedCatalogue(first, second, frozenset(unknown), left_out, total)
