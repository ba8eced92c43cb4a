"""Every measure of the window vocabulary in every window kind, through the
real stream (Flink, Kafka, chDB) and the real batch (`batch reconcile`, Spark) over the archive
the stream wrote: both tables equal an independent computation in plain Python
(tests/reference.py) exactly, the floating measures (avg, stddev, variance) too: both engines
compute them from exact decimal sums with one double division (docs/features.md)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from common.clickhouse import close_clients, get_client
from common.services import local_services
from features.definitions import Hop, Session, Tumble
from features.generator import GeneratorConfig, generate
from features.repository import read_repository
from tests.conftest import isolated_settings, run_batch
from tests.support import reference as ref
from tests.support.pipeline import ms, run_pipeline

REPO = Path(__file__).resolve().parents[1] / "feature_repos" / "vocabulary.py"
FEATURES = read_repository(REPO).stream
ROLLING = read_repository(REPO).feature("spend_30d")
DAY = "2026-01-01"


def _events() -> list[dict]:
    """2,400 events over 40 minutes of 2026-01-01, none late: 40 users, so each has several
    windows; `qty` on item events; every 9th event ties with the one before it (same user, same
    millisecond), so first/last and the k-lists depend on the order of arrival."""
    cfg = GeneratorConfig(seed=11, users=40, items=30, late=0.0, events_per_second=1)
    out: list[dict] = []
    for i, e in enumerate(generate(cfg, 2400)):
        e = dict(e) | {"qty": (i % 5) + 1 if e.get("price") is not None else None}
        if i % 9 == 0 and out:
            e |= {"user_id": out[-1]["user_id"], "event_time": out[-1]["event_time"]}
        out.append(e)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    home = tmp_path_factory.mktemp("vocabulary")
    s = isolated_settings(home / "home", feature_repo=REPO)
    path = home / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in _events()))
    result = run_pipeline(s, "jsonl", path)
    p = run_batch(s, "backfill", "--start", DAY, "--end", DAY)  # one Spark: the day, and the 30-day features
    assert p.returncode == 0, p.stdout + p.stderr
    ch = get_client(s)
    batch = {f.name: ch.query(f"SELECT * FROM features.{f.name}_batch").result_rows for f in FEATURES}
    batch[ROLLING.name] = ch.query(f"SELECT * FROM features.{ROLLING.name}").result_rows
    accepted = ref.accept(result.events)
    assert not any(e["late"] for e in accepted)  # the stream and the batch see the same events
    yield result.tables, batch, accepted
    close_clients()
    for svc in local_services(s):  # the backfill started ClickHouse and Redis (it publishes online)
        svc.stop()


def _window(f) -> tuple[str, int, int]:
    w = f.aggregation.window
    if isinstance(w, Tumble):
        return "tumble", w.size_s * 1000, 0
    if isinstance(w, Hop):
        return "hop", w.size_s * 1000, w.slide_s * 1000
    assert isinstance(w, Session)
    return "session", w.gap_s * 1000, 0


def _expected(f, accepted: list[dict]) -> dict[tuple[int, int], dict]:
    kind, size, slide = _window(f)
    out = {}
    for key, rows in ref.window_groups(accepted, kind, size, slide).items():
        row = {}
        for m in f.aggregation.measures:
            if m.fn in ("min_time", "max_time"):
                times = [e["event_time"] for _, e in rows]
                row[m.name] = min(times) if m.fn == "min_time" else max(times)
            else:
                row[m.name] = ref.measure(m.fn, m.arg, m.k, rows)
        out[key] = row
    return out


def _rows(f, rows: list[tuple]) -> dict[tuple[int, int], dict]:
    """ClickHouse rows by (user, window or session start), values as the reference gives them."""
    names = [c.name for c in f.columns]
    start = "session_start" if isinstance(f.aggregation.window, Session) else "window_start"
    out = {}
    for r in rows:
        row = dict(zip(names, r, strict=True))
        values = {}
        for m in f.aggregation.measures:
            v = row[m.name]
            values[m.name] = ms(v) if m.fn in ("min_time", "max_time") else v
        out[(row["user_id"], ms(row[start]))] = values
    return out


def _same(f, got: dict, want: dict) -> list[str]:
    """The differences, measure by measure."""
    assert got.keys() == want.keys(), (f.name, sorted(got.keys() ^ want.keys())[:5])
    bad = []
    for key, row in want.items():
        for name, v in row.items():
            g = got[key][name]
            if isinstance(v, Decimal) and g is not None:
                g = Decimal(g)
            if g != v or type(g) is not type(v):
                bad.append(f"{f.name} {key} {name}: got {g!r}, want {v!r}")
    return bad


@pytest.mark.parametrize("name", [f.name for f in FEATURES])
def test_stream_equals_the_reference(run, name):
    stream, _, accepted = run
    f = next(f for f in FEATURES if f.name == name)
    want = _expected(f, accepted)
    assert len(want) > 40  # many windows, so each measure meets many cases
    assert _same(f, _rows(f, stream[name]), want) == []


@pytest.mark.parametrize("name", [f.name for f in FEATURES])
def test_batch_equals_the_reference(run, name):
    _, batch, accepted = run
    f = next(f for f in FEATURES if f.name == name)
    assert _same(f, _rows(f, batch[name]), _expected(f, accepted)) == []


def test_the_30_day_measures_equal_the_reference(run):
    """Sums (a DOUBLE's exactly, as DECIMAL(38, 6)), minima, maxima, moments (bit for bit)
    and first/last (ties in time by arrival) over the 30 days up to the day, from the daily partials."""
    _, batch, accepted = run
    users: dict[int, list] = {}
    for i, e in enumerate(accepted):
        users.setdefault(e["user_id"], []).append((i, e))
    want = {}
    for user, rows in users.items():
        want[user] = (
            sum(e["event_type"] == "purchase" for _, e in rows),
            ref.measure("sum", "price", 0, rows) or Decimal(0),
            ref.measure("sum", "qty", 0, rows) or 0,
            ref.measure("min", "price", 0, rows),
            ref.measure("max", "qty", 0, rows),
            ref.measure("max", "brand", 0, rows),
            ref.measure("avg", "price", 0, rows),
            ref.measure("variance", "qty", 0, rows),
            ref.measure("stddev", "price", 0, [(i, e) for i, e in rows if e["event_type"] == "purchase"]),
            ref.measure("first", "brand", 0, rows),
            ref.measure("last", "qty", 0, rows),
        )
    got = {r[1]: r[2:] for r in batch[ROLLING.name]}
    assert {str(r[0]) for r in batch[ROLLING.name]} == {DAY}
    assert got == want


def test_the_data_meets_the_cases_that_matter(run):
    """Ties in time inside windows, null values, windows of more than k distinct values, and
    windows and sessions whose top_k and histogram the tie rule decides (equal counts at the
    cap): so the tests above could fail."""
    _, _, accepted = run
    rows = ref.window_groups(accepted, "tumble", 600_000)
    assert any(len({e["event_time"] for _, e in r}) < len(r) for r in rows.values())
    assert any(e.get("brand") is None for e in accepted) and any(e.get("qty") is None for e in accepted)
    assert any(len({e.get("brand") for _, e in r} - {None}) > 3 for r in rows.values())
    sessions = ref.window_groups(accepted, "session", 300_000)
    for groups in (rows, sessions):
        for field, k in (("brand", 2), ("qty", 2)):
            assert any(_tie_at_the_cap(r, field, k) for r in groups.values()), (field, k)


def _tie_at_the_cap(rows: list, field: str, k: int) -> bool:
    counts = sorted(Counter(e[field] for _, e in rows if e.get(field) is not None).values(), reverse=True)
    return len(counts) > k and counts[k - 1] == counts[k]
