"""A brute-force point-in-time reference: for each spine row, every feature recomputed in
plain Python from exactly the archived events that count at its ts (tests/support/reference.py
for the features themselves), following docs/training.md's rules."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from tests.support import reference as ref

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


class Windows:
    """Every window of the windowed features, with the time from which it counts (by event
    time: its end; as known: end + watermark delay or its last arrival, over on-time events)."""

    def __init__(self, events: list[dict], known: bool) -> None:
        ev = [dict(e, late=False) for e in events if not known or not e["late"]]  # the reference drops late ones
        self.known = known
        arrived: dict[tuple, int] = {}

        def seen(key: tuple, e: dict) -> None:
            if known:
                arrived[key] = max(arrived.get(key, 0), arrival(e))

        for e in ev:
            t = e["event_time"]
            seen(("uv", t // 60_000 * 60_000), e)
            if e["event_type"] == "click":
                tile = t // 300_000 * 300_000
                for k in range(12):
                    seen(("cc", e["user_id"], tile - k * 300_000), e)
                if e.get("item_id") is not None:
                    seen(("hot", tile), e)

        def at(end: int, key: tuple) -> int:
            return max(end + WATERMARK, arrived[key]) if known else end

        self.cc: dict[int, dict[int, list]] = {}
        for (u, cat, ws), n in ref.category_clicks_1h(ev).items():
            self.cc.setdefault(u, {}).setdefault(ws, []).append((cat, n))
        self.cc_cands = {
            u: [(at(ws + 3_600_000, ("cc", u, ws)), ws + 3_600_000, sorted(r, key=_nulls_first)) for ws, r in w.items()]
            for u, w in self.cc.items()
        }
        self.sessions: dict[int, list] = {}
        for u, start, end, n, c, ca, p in ref.user_sessions(ev):
            members = [arrival(e) for e in ev if e["user_id"] == u and start <= e["event_time"] <= end]
            counted = max([end + GAP + WATERMARK, *members]) if known else end + GAP
            self.sessions.setdefault(u, []).append((counted, end + GAP, (start, end, n, c, ca, p)))
        self.uv = [(at(ws + 60_000, ("uv", ws)), ws + 60_000, v) for ws, v in ref.uv_1m(ev).items()]
        self.hot = [(at(ws + 300_000, ("hot", ws)), ws + 300_000, v) for ws, v in ref.hot_items_5m(ev).items()]

    def at(self, user: int, ts: int) -> dict:
        return {
            "category_clicks_1h": _newest(self.cc_cands.get(user, []), ts),
            "user_sessions": _newest(self.sessions.get(user, []), ts),
            "uv_1m": _newest(self.uv, ts),
            "hot_items_5m": _newest(self.hot, ts),
        }


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
