"""A brute-force point-in-time reference: for each spine row, every feature recomputed in
plain Python from exactly the archived events that count at its ts (tests/reference.py
for the features themselves), following docs/training.md's rules."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from tests import reference as ref

DAY = 86_400_000
LOOKBACK = 7 * DAY
WATERMARK = 3000
RECONCILE_DELAY = 60 * 60_000
GAP = 300_000
CART = ("cart", "remove_cart", "purchase")


def arrival(e: dict) -> int | None:
    """When the event arrived; without arrived_at, an on-time event at its event time."""
    if e.get("arrived_at") is not None:
        return e["arrived_at"]
    return None if e["late"] else e["event_time"]


def counts(e: dict, ts: int, known: bool) -> bool:
    if e["event_time"] > ts:
        return False
    return not known or (arrival(e) is not None and arrival(e) <= ts)


def state(events: list[dict], user: int, ts: int, known: bool) -> dict:
    ev = [e for e in events if e["user_id"] == user and counts(e, ts, known) and e["event_time"] > ts - LOOKBACK]
    carts = [e["event_time"] for e in ev if e["event_type"] in CART]
    searches = [e["event_time"] for e in ev if e["event_type"] == "search" and e.get("query") is not None]
    return {
        "cart_amount": ref.cart_amount(ev).get(user),
        "cart_amount__updated_at": max(carts, default=None),
        "last_searches__queries": ref.last_searches(ev).get(user),
        "last_searches__updated_at": max(searches, default=None),
        "last_event_time": max((e["event_time"] for e in ev), default=None),
    }


def _newest(candidates: list[tuple[int, int, object]], ts: int) -> object:
    """Of (counted from, end, value), the value with the newest end counted at ts within the lookback."""
    ok = [(end, v) for at, end, v in candidates if at <= ts and end > ts - LOOKBACK]
    return max(ok, key=lambda x: x[0])[1] if ok else None


def _known(end: int, members: list[dict], known: bool) -> int:
    return max([end + WATERMARK] + [arrival(e) for e in members]) if known else end


def windows(events: list[dict], user: int, ts: int, known: bool) -> dict:
    """The newest window of each windowed feature counted at ts (by event time: all events;
    as known: on-time events, counted from end + watermark delay or its last arrival)."""
    ev = [e for e in events if not known or not e["late"]]
    ev = [dict(e, late=False) for e in ev]  # the reference functions drop late events; here they are chosen above
    out: dict = {}
    clicks = [e for e in ev if e["event_type"] == "click"]
    cc: dict[int, list] = {}
    for (u, cat, ws), n in ref.category_clicks_1h(ev).items():
        if u == user:
            cc.setdefault(ws, []).append((cat, n))
    cands = []
    for ws, rows in cc.items():
        members = [e for e in clicks if e["user_id"] == user and ws <= e["event_time"] < ws + 3_600_000]
        cands.append((_known(ws + 3_600_000, members, known), ws + 3_600_000, sorted(rows, key=_nulls_first)))
    out["category_clicks_1h"] = _newest(cands, ts)
    cands = []
    for u, start, end, n, c, ca, p in ref.user_sessions([e for e in ev if e["user_id"] == user]):
        members = [e for e in ev if e["user_id"] == u and start <= e["event_time"] <= end]
        cands.append((_known(end + GAP, members, known), end + GAP, (start, end, n, c, ca, p)))
    out["user_sessions"] = _newest(cands, ts)
    cands = []
    for ws, v in ref.uv_1m(ev).items():
        members = [e for e in ev if ws <= e["event_time"] < ws + 60_000]
        cands.append((_known(ws + 60_000, members, known), ws + 60_000, v))
    out["uv_1m"] = _newest(cands, ts)
    cands = []
    hot = [e for e in clicks if e.get("item_id") is not None]
    for ws, items in ref.hot_items_5m(ev).items():
        members = [e for e in hot if ws <= e["event_time"] < ws + 300_000]
        cands.append((_known(ws + 300_000, members, known), ws + 300_000, items))
    out["hot_items_5m"] = _newest(cands, ts)
    return out


def _nulls_first(row: tuple) -> tuple:
    return (row[0] is not None, row[0] or 0)


def _day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).date()


def _day_ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


def rolling(events: list[dict], user: int, ts: int, known: bool) -> dict:
    """The 30-day features as of the day before ts's day (as known: before the day of
    ts - the reconcile delay, over the events arrived when that day's batch ran)."""
    as_of = _day(ts - RECONCILE_DELAY if known else ts) - timedelta(days=1)
    cutoff = _day_ms(as_of + timedelta(days=1)) + RECONCILE_DELAY
    lo = as_of - timedelta(days=29)
    ev = [e for e in events if e["user_id"] == user and lo <= _day(e["event_time"]) <= as_of]
    if known:
        ev = [e for e in ev if arrival(e) is not None and arrival(e) <= cutoff]
    bought = [e for e in ev if e["event_type"] == "purchase"]
    brands = Counter(e["brand"] for e in bought if e.get("brand") is not None)
    top = sorted(brands.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    stats = None
    if ev:
        gmv = sum((Decimal(str(e.get("price") or 0)).quantize(Decimal("0.01")) for e in bought), Decimal("0.00"))
        items = {e.get("item_id") for e in bought if e.get("item_id") is not None}
        stats = (len(bought), gmv, len(items), len({_day(e["event_time"]) for e in ev}))
    return {"as_of": as_of, "top_brands_30d": [b for b, _ in top] or None, "purchase_stats_30d": stats}
