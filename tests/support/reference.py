"""An independent computation of every streaming feature, in plain Python, straight
from DESIGN.md's definitions, to check the Flink job against."""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal

EVENT_TYPES = {"click", "cart", "remove_cart", "purchase", "fav", "search", "login"}
WM_DELAY = 3000


def accept(events: list[dict], lo: int = 946_684_800_000, future_ms: int = 86_400_000) -> list[dict]:
    """Drop what the rules reject; mark late events (ts <= max earlier ts - 3 s), in source order."""
    hi = int(time.time() * 1000) + future_ms
    out, max_ts = [], None
    for e in events:
        if e.get("user_id") is None or e.get("event_time") is None or e.get("event_type") not in EVENT_TYPES:
            continue
        if (e.get("price") or 0) < 0 or not lo <= e["event_time"] <= hi:
            continue
        wm = None if max_ts is None else max_ts - WM_DELAY
        out.append({**e, "late": wm is not None and e["event_time"] <= wm})
        max_ts = e["event_time"] if max_ts is None else max(max_ts, e["event_time"])
    return out


def uv_1m(ev: list[dict]) -> dict[int, tuple[int, int]]:
    users, counts = defaultdict(set), Counter()
    for e in ev:
        if not e["late"]:
            w = e["event_time"] // 60_000 * 60_000
            users[w].add(e["user_id"])
            counts[w] += 1
    return {w: (len(users[w]), counts[w]) for w in counts}


def hot_items_5m(ev: list[dict]) -> dict[int, list[tuple[int, int]]]:
    clicks: dict[int, Counter] = defaultdict(Counter)
    for e in ev:
        if not e["late"] and e["event_type"] == "click" and e.get("item_id") is not None:
            clicks[e["event_time"] // 300_000 * 300_000][e["item_id"]] += 1
    return {w: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:10] for w, c in clicks.items()}


def category_tiles(ev: list[dict]) -> dict[tuple[int, int | None, int], int]:
    c: Counter = Counter()
    for e in ev:
        if not e["late"] and e["event_type"] == "click":
            c[(e["user_id"], e.get("category_id"), e["event_time"] // 300_000 * 300_000)] += 1
    return dict(c)


def category_clicks_1h(ev: list[dict]) -> dict[tuple[int, int | None, int], int]:
    out: Counter = Counter()
    for (user, cat, tile), n in category_tiles(ev).items():
        for k in range(12):
            out[(user, cat, tile - k * 300_000)] += n
    return dict(out)


def user_sessions(ev: list[dict]) -> set[tuple[int, int, int, int, int, int, int]]:
    out = set()
    for user, session in session_runs(ev, 300_000):
        types = Counter(x["event_type"] for x in session)
        first, last = session[0]["event_time"], session[-1]["event_time"]
        out.add((user, first, last, len(session), types["click"], types["cart"], types["purchase"]))
    return out


def cart_amount(ev: list[dict]) -> dict[int, Decimal]:
    latest: dict[tuple[int, int | None], dict] = {}
    for e in ev:  # source order: a later tie wins
        if e["event_type"] in ("cart", "remove_cart", "purchase"):
            k = (e["user_id"], e.get("item_id"))
            if k not in latest or e["event_time"] >= latest[k]["event_time"]:
                latest[k] = e
    out: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for (user, _), e in latest.items():
        add = Decimal(str(e.get("price") or 0)).quantize(Decimal("0.01")) if e["event_type"] == "cart" else Decimal(0)
        out[user] += add
    return {u: v.quantize(Decimal("0.01")) for u, v in out.items()}


def last_searches(ev: list[dict]) -> dict[int, list[str]]:
    by_user = defaultdict(list)
    for i, e in enumerate(ev):
        if e["event_type"] == "search" and e.get("query") is not None:
            by_user[e["user_id"]].append((e["event_time"], i, e["query"]))
    return {u: [q for _, _, q in sorted(xs, reverse=True)[:10]] for u, xs in by_user.items()}


def last_event_time(ev: list[dict]) -> dict[int, int]:
    out: dict[int, int] = {}
    for e in ev:
        out[e["user_id"]] = max(out.get(e["user_id"], e["event_time"]), e["event_time"])
    return out


# -- any repository's features of these kinds (tests/feature_repos) ------------------------
def tumble(ev: list[dict], size_ms: int, where, key: str = "user_id") -> dict[tuple, int]:
    """(key value, window start) -> events in tumbling windows, on-time events matching `where`."""
    c: Counter = Counter()
    for e in ev:
        if not e["late"] and where(e):
            c[(e.get(key), e["event_time"] // size_ms * size_ms)] += 1
    return dict(c)


def hop(ev: list[dict], size_ms: int, slide_ms: int, where, key: str = "user_id") -> dict[tuple, int]:
    """(key value, window start) -> events in sliding windows: an event at t is in the windows
    [s, s + size) with s a multiple of slide and s <= t < s + size."""
    c: Counter = Counter()
    for (k, tile), n in tumble(ev, slide_ms, where, key).items():
        for i in range(size_ms // slide_ms):
            c[(k, tile - i * slide_ms)] += n
    return dict(c)


def session_runs(ev: list[dict], gap_ms: int):
    """(user, the session's on-time events in time order) per session: a pause of more than
    gap_ms splits one."""
    by_user = defaultdict(list)
    for e in ev:
        if not e["late"]:
            by_user[e["user_id"]].append(e)
    for user, es in by_user.items():
        es.sort(key=lambda e: e["event_time"])
        run: list[dict] = []
        for e in es + [None]:
            if run and (e is None or e["event_time"] - run[-1]["event_time"] > gap_ms):
                yield user, run
                run = []
            if e is not None:
                run.append(e)


def sessions(ev: list[dict], gap_ms: int, counted) -> set[tuple[int, int, int, int, int]]:
    """(user, first event time, last event time, events, events matching `counted`) per session."""
    return {
        (u, r[0]["event_time"], r[-1]["event_time"], len(r), sum(map(counted, r))) for u, r in session_runs(ev, gap_ms)
    }


def last_values(ev: list[dict], field: str, n: int) -> dict[int, list]:
    """The n newest non-null values of a field per user, newest first (ties: later in source order)."""
    by_user = defaultdict(list)
    for i, e in enumerate(ev):
        if e.get(field) is not None:
            by_user[e["user_id"]].append((e["event_time"], i, e[field]))
    return {u: [v for _, _, v in sorted(xs, reverse=True)[:n]] for u, xs in by_user.items()}


# -- the window vocabulary (tests/feature_repos/vocabulary.py) --------------------------------
def window_groups(ev: list[dict], kind: str, size_ms: int, slide_ms: int = 0) -> dict[tuple[int, int], list]:
    """(user, window or session start) -> its on-time events with their source position, in
    source order. kind: tumble, hop (size, slide) or session (size = the gap)."""
    out: dict[tuple[int, int], list] = defaultdict(list)
    if kind == "session":
        pos = {id(e): i for i, e in enumerate(ev)}
        for user, run in session_runs(ev, size_ms):
            out[(user, run[0]["event_time"])] = sorted(((pos[id(e)], e) for e in run), key=lambda p: p[0])
        return dict(out)
    for i, e in enumerate(ev):
        if e["late"]:
            continue
        if kind == "tumble":
            starts = [e["event_time"] // size_ms * size_ms]
        else:
            tile = e["event_time"] // slide_ms * slide_ms
            starts = [tile - k * slide_ms for k in range(size_ms // slide_ms)]
        for s in starts:
            out[(e["user_id"], s)].append((i, e))
    return dict(out)


def measure(fn: str, field: str, k: int, rows: list) -> object:
    """One measure over a window's (source position, event) pairs, as docs/features.md defines it."""
    vals = [(e["event_time"], i, e.get(field)) for i, e in rows if e.get(field) is not None]
    xs = [v for _, _, v in vals]
    if fn == "count":
        return len(rows)
    if fn in ("top_k", "histogram"):
        ranked = sorted(Counter(str(v) for v in xs).items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        return [v for v, _ in ranked] if fn == "top_k" else dict(ranked)
    if fn in ("first_k", "last_k"):
        ordered = sorted(vals, reverse=fn == "last_k")
        return [str(v) for _, _, v in ordered[:k]]
    if not xs:
        return None
    if fn == "sum":  # BIGINT exactly; DOUBLE each rounded to 6 decimals half up, then added
        if isinstance(xs[0], int):
            return sum(xs)
        return sum(Decimal(repr(x)).quantize(Decimal("0.000001"), ROUND_HALF_UP) for x in xs)
    if fn in ("min", "max"):
        return (min if fn == "min" else max)(xs)
    if fn in ("first", "last"):
        return (min if fn == "first" else max)(vals)[2]
    # avg, variance, stddev: exact sums of the values rounded to 6 decimals and of their
    # squares, then doubles: E[x^2] - E[x]^2, never below 0
    ds = [Decimal(repr(x)).quantize(Decimal("0.000001"), ROUND_HALF_UP) for x in xs]
    mean = float(sum(ds)) / len(ds)
    if fn == "avg":
        return mean
    var = max(float(sum(d * d for d in ds)) / len(ds) - mean * mean, 0.0)
    return var if fn == "variance" else math.sqrt(var)
