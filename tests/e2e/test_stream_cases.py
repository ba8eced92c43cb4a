"""Hand-made events with known answers through the real pipeline: ties, removes and
purchases, session gaps of exactly 5 minutes, out-of-order and late events, bad records."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from tests.support import reference as ref
from tests.support.pipeline import ms, run_pipeline

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN = 60_000


def ev(user, etype, t, item=None, price=None, query=None, cat=None):
    return {
        "user_id": user,
        "event_type": etype,
        "event_time": t,
        "item_id": item,
        "price": price,
        "query": query,
        "category_id": cat,
    }


def cases() -> list:
    e = []
    # cart: remove, purchase, and a tie at the same millisecond (later line wins)
    e += [
        ev(1, "cart", T0, 10, 5.00),
        ev(1, "cart", T0 + 1000, 11, 2.50),
        ev(1, "remove_cart", T0 + 2000, 10),
        ev(1, "cart", T0 + 3000, 12, 1.25),
        ev(1, "purchase", T0 + 3000, 12),
    ]
    e += [ev(2, "purchase", T0 + 4000, 20, 9.99), ev(2, "cart", T0 + 4000, 20, 9.99)]
    e += [ev(6, "cart", T0 + 4100, 30, 0.10), ev(6, "cart", T0 + 4200, 31, 0.20)]  # money adds exactly
    # sessions: exactly 5 min apart stays together; 5 min + 1 ms splits
    e += [
        ev(3, "click", T0 + 5000, 40, cat=7),
        ev(3, "click", T0 + 5000 + 5 * MIN, 41, cat=7),
        ev(3, "cart", T0 + 5000 + 10 * MIN + 1, 41, 3.0),
    ]
    # searches: 12 queries, one arriving out of order within the watermark delay
    for k in range(1, 13):
        e.append(ev(4, "search", T0 + 11 * MIN + k * 1000, query=f"q{k}"))
    e.append(ev(4, "search", T0 + 11 * MIN + 11_500, query="q11.5"))  # arrives after q12, older
    # an out-of-order click within the delay: on time; a click 2 min behind: late
    e += [ev(5, "click", T0 + 12 * MIN, 50, cat=8), ev(5, "click", T0 + 12 * MIN - 2000, 51, cat=8)]
    e += [ev(5, "click", T0 + 10 * MIN, 52, cat=8)]
    e += [ev(7, "login", T0 + 13 * MIN)]
    return e


BAD = [
    "this is not json",
    orjson.dumps(ev(None, "click", T0)).decode(),  # missing user
    orjson.dumps(ev(9, "teleport", T0)).decode(),  # unknown type
    orjson.dumps(ev(9, "cart", T0, 1, -1.0)).decode(),  # negative price
    orjson.dumps(ev(9, "click", 15_000)).decode(),  # 1970
    orjson.dumps(ev(9, "click", 4_102_444_800_000)).decode(),  # 2100: would move the watermark
]


@pytest.fixture
def run(settings, tmp_path):
    path = tmp_path / "cases.jsonl"
    lines = [orjson.dumps(e).decode() for e in cases()]
    lines[8:8] = BAD
    path.write_text("\n".join(lines) + "\n")
    return run_pipeline(settings, "jsonl", path)


def test_known_answers(run):
    s = run.summary
    assert s.parse_dead_letters == 1 and s.stream_dead_letters == 5
    assert s.late == 1  # the click 2 min behind
    carts = {u: a for u, a, _ in run.tables["cart_amount"]}
    assert carts[1] == Decimal("2.50") and carts[2] == Decimal("9.99") and carts[6] == Decimal("0.30")
    assert run.online["user:1"]["cart_amount"] == "2.50"
    sessions = sorted((ms(a) - T0, ms(b) - T0, n) for u, a, b, n, *_ in run.tables["user_sessions"] if u == 3)
    assert sessions == [(5000, 5000 + 5 * MIN, 2), (5000 + 10 * MIN + 1, 5000 + 10 * MIN + 1, 1)]
    expected = ["q12", "q11.5", "q11", "q10", "q9", "q8", "q7", "q6", "q5", "q4"]
    assert [(q, ms(t)) for u, q, t in run.tables["last_searches"] if u == 4] == [(expected, T0 + 11 * MIN + 12_000)]
    assert orjson.loads(run.online["user:4"]["last_searches"]) == expected
    # the late click counts for last_event_time state but in no window
    assert int(run.online["user:5"]["last_event_time"]) == T0 + 12 * MIN
    tiles = {(u, c, ms(ws)): n for u, ws, _we, c, n in run.tables["category_clicks_1h_tiles"]}
    assert tiles[(5, 8, T0 + 10 * MIN)] == 2  # 12:00 and 11:58; not the late 10:00 one


def test_matches_reference(run):
    accepted = ref.accept([{**e, "event_id": str(i)} for i, e in enumerate(run.events)])
    assert {ms(ws): (uv, n) for ws, _we, uv, n in run.tables["uv_1m"]} == ref.uv_1m(accepted)
    got = {(u, ms(a), ms(b), n, c, ca, p) for u, a, b, n, c, ca, p in run.tables["user_sessions"]}
    assert got == ref.user_sessions(accepted)
    assert {u: a for u, a, _ in run.tables["cart_amount"]} == ref.cart_amount(accepted)
    assert {u: q for u, q, _ in run.tables["last_searches"]} == ref.last_searches(accepted)


def test_batch_includes_exactly_the_late_events(run):
    """Batch over the archive counts the late click the stream's windows left out, and
    nothing else differs."""
    from common.clickhouse import get_client
    from tests.conftest import run_batch

    p = run_batch(run.settings, "reconcile", "--date", "2026-01-01")
    assert p.returncode == 0, p.stdout + p.stderr
    ch = get_client(run.settings)
    batch = {ms(ws): (uv, n) for ws, _we, uv, n in ch.query("SELECT * FROM features.uv_1m_batch FINAL").result_rows}
    stream = {ms(ws): (uv, n) for ws, _we, uv, n in run.tables["uv_1m"]}
    late_window = T0 + 10 * MIN
    uv, n = stream.pop(late_window)
    assert batch.pop(late_window) == (uv + 1, n + 1)  # user 5's click 2 min behind, and only it
    assert batch == stream
    rows = ch.query(
        "SELECT user_id, category_id, window_start, clicks FROM features.category_clicks_1h_batch"
    ).result_rows
    assert {(u, c, ms(ws)): n for u, c, ws, n in rows}[(5, 8, T0 + 10 * MIN)] == 3  # the stream has 2
