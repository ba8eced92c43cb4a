"""Point-in-time training sets on the real Spark engine against a brute-force reference
(tests/support/pit_reference.py), in both modes, and a leakage test: events after every ts, and
events that arrived after every ts, added to the archive change nothing they must not."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from features.ecommerce import FEATURES, STREAM_FEATURES
from features.generator import GeneratorConfig, generate
from tests.conftest import REPO, env_of
from tests.support import pit_reference as pit
from tests.support.archive import write_archive

D0 = date(2026, 1, 3)
T0 = int(datetime(2026, 1, 3, tzinfo=UTC).timestamp() * 1000)
HOUR = 3_600_000
DAY = 24 * HOUR
OLD = T0 - 8 * DAY
USERS = 12


def archived_events(seed: int = 7) -> list[dict]:
    """Generated events over about two days, with arrival delays: most within 2.5 s, some
    minutes to hours late (flagged late), and some with no arrived_at (an older archive)."""
    rng = random.Random(seed)
    cfg = GeneratorConfig(seed=seed, users=USERS, items=40, categories=4, events_per_second=1 / 50, start_ms=T0)
    out = []
    for e in generate(cfg, 3000):
        roll = rng.random()
        if roll < 0.85:
            delay = rng.randint(5, 2500)
        elif roll < 0.95:
            delay = rng.randint(60_000, 3 * HOUR)
        else:
            out.append({**e, "late": rng.random() < 0.5})
            continue
        out.append({**e, "arrived_at": e["event_time"] + delay, "late": delay > 3000})
    return old_events() + out


def old_events() -> list[dict]:
    """A cart, a search and a click of users 1..3 eight days earlier: they age out of the
    7-day lookback at the spine rows `expiry_rows` puts around that moment."""
    out = []
    for u in range(1, 4):
        t = OLD + u * 1000
        common = {"user_id": u, "late": False, "brand": "acme", "category_id": 1}
        out.append({**common, "event_type": "cart", "item_id": 1000 + u, "price": 3.0, "event_time": t})
        out.append({**common, "event_type": "search", "query": "old", "event_time": t + 100})
        out.append({**common, "event_type": "click", "item_id": 1000 + u, "event_time": t + 200})
    return [{**e, "arrived_at": e["event_time"] + 50} for e in out]


def expiry_rows() -> list[tuple[int, int]]:
    """Times just before, at and after the old events leave the lookback."""
    return [(u, OLD + 7 * DAY + u * 1000 + d) for u in range(1, 4) for d in (-1, 0, 99, 100, 201, 3_600_000)]


def spine_rows(events: list[dict], seed: int = 11) -> list[dict]:
    """Random times per user (one user without events), plus times that hit event times,
    arrival times, window ends and day ends exactly."""
    rng = random.Random(seed)
    last = max(e["event_time"] for e in events)
    rows = expiry_rows()
    for user in range(1, USERS + 2):
        for _ in range(20):
            rows.append((user, rng.randint(T0 - HOUR, last + HOUR)))
    for e in rng.sample(events[9:], 40):
        rows.append((e["user_id"], e["event_time"]))
        if e.get("arrived_at"):
            rows.append((e["user_id"], e["arrived_at"]))
    for user in range(1, 4):
        rows += [(user, T0 + 30 * HOUR + 300_000 * k) for k in range(3)]
        rows += [(user, T0 + k * 24 * HOUR - 1) for k in (1, 2)]
    return [{"user_id": u, "ts": ts, "label": i} for i, (u, ts) in enumerate(rows)]


def write_spine(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def run_spark(settings, tmp_path: Path, jobs: dict) -> None:
    """tests/support/pit_spark.py in its own process (Spark never runs in the test's process)."""
    f = tmp_path / f"jobs-{len(list(tmp_path.glob('jobs-*')))}.json"
    f.write_bytes(orjson.dumps(jobs))
    full = {k: v for k, v in os.environ.items() if not k.startswith("LAMBDA_FEATURES_")} | env_of(settings)
    p = subprocess.run(
        [sys.executable, "-m", "tests.support.pit_spark", str(f)], cwd=REPO, env=full, capture_output=True, text=True
    )
    assert p.returncode == 0, (p.stdout + p.stderr)[-5000:]


def ms(v) -> int | None:
    return None if v is None else int(v.replace(tzinfo=v.tzinfo or UTC).timestamp() * 1000)


NO_30D = {
    "top_brands_30d": None,
    "top_brands_30d__as_of": None,
    **{f"purchase_stats_30d__{c}": None for c in ("purchases", "gmv", "distinct_items", "active_days")},
}


def normalized(row: dict) -> dict:
    """A training-set row in the reference's shapes."""
    sess = None
    if row["user_sessions__session_start"] is not None:
        sess = (ms(row["user_sessions__session_start"]), ms(row["user_sessions__session_end"])) + tuple(
            row[f"user_sessions__{c}"] for c in ("events", "clicks", "carts", "purchases")
        )
    uv = None if row["uv_1m__uv"] is None else (row["uv_1m__uv"], row["uv_1m__events"])
    cc, hot, top = row["category_clicks_1h"], row["hot_items_5m"], row["top_brands_30d"]
    stats = None
    if row["purchase_stats_30d__purchases"] is not None:
        stats = tuple(row[f"purchase_stats_30d__{c}"] for c in ("purchases", "gmv", "distinct_items", "active_days"))
    return {
        "cart_amount": row["cart_amount"],
        "cart_amount__updated_at": ms(row["cart_amount__updated_at"]),
        "last_searches__queries": row["last_searches__queries"],
        "last_searches__updated_at": ms(row["last_searches__updated_at"]),
        "last_event_time": ms(row["last_event_time"]),
        "category_clicks_1h": None if cc is None else [(r["category_id"], r["clicks"]) for r in cc],
        "user_sessions": sess,
        "uv_1m": uv,
        "hot_items_5m": None if hot is None else [(r["item_id"], r["clicks"]) for r in hot],
        "as_of": row["top_brands_30d__as_of"],
        "top_brands_30d": None if top is None else [r["brand"] for r in top],
        "purchase_stats_30d": stats,
    }


def expected(events: list[dict], spine: list[dict], known: bool) -> list[dict]:
    windows = pit.Windows(events, known)
    return [
        pit.state(events, r["user_id"], r["ts"], known)
        | windows.at(r["user_id"], r["ts"])
        | pit.rolling(events, r["user_id"], r["ts"], known)
        for r in spine
    ]


def read(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def assert_rows(got: list[dict], spine: list[dict], want: list[dict]) -> None:
    assert [(r["user_id"], r["ts"], r["label"]) for r in got] == [(r["user_id"], r["ts"], r["label"]) for r in spine]
    bad = [(s, g, w) for s, g, w in zip(spine, map(normalized, got), want, strict=True) if g != w]
    detail = [(s, {k: (g[k], w[k]) for k in w if g[k] != w[k]}) for s, g, w in bad[:3]]
    assert not bad, f"{len(bad)} of {len(spine)} rows differ, e.g. {detail}"


def lake_days(spine: list[dict]) -> list[str]:
    days = {datetime.fromtimestamp(r["ts"] / 1000, UTC).date() - timedelta(days=1) for r in spine}
    return sorted(d.isoformat() for d in days)


def test_point_in_time_matches_reference_and_leaks_nothing(settings, tmp_path: Path):
    events = archived_events()
    write_archive(settings, events)
    spine = spine_rows(events)
    sp = write_spine(tmp_path / "spine.parquet", spine)
    names = [f.name for f in FEATURES]
    out = {k: tmp_path / f"{k}.parquet" for k in ("time", "known", "time2", "known2")}
    run_spark(
        settings,
        tmp_path,
        {
            "lake_days": lake_days(spine),
            "builds": [
                {"spine": str(sp), "features": names, "out": str(out["time"]), "as_known_at": False},
                {"spine": str(sp), "features": names, "out": str(out["known"]), "as_known_at": True},
            ],
        },
    )
    assert_rows(read(out["time"]), spine, expected(events, spine, known=False))
    assert_rows(read(out["known"]), spine, expected(events, spine, known=True))

    # leakage: events after every ts, and events before ts that arrived after every ts
    last = max(r["ts"] for r in spine)
    rng = random.Random(3)
    # src_part 1: after the first write's events in source order, as in the reference's list
    after = [dict(e, event_time=last + 1 + k, arrived_at=last + 1 + k, late=False) for k, e in enumerate(events[:300])]
    arrived_late = [
        dict(e, event_time=rng.randint(T0, last), arrived_at=last + 1 + k, late=True)
        for k, e in enumerate(events[300:600])
    ]
    after = [dict(e, src_part=1) for e in after + arrived_late]
    write_archive(settings, after)
    stream = [f.name for f in STREAM_FEATURES]
    run_spark(
        settings,
        tmp_path,
        {
            "builds": [
                {"spine": str(sp), "features": stream, "out": str(out["time2"]), "as_known_at": False},
                {"spine": str(sp), "features": names, "out": str(out["known2"]), "as_known_at": True},
            ]
        },
    )
    assert read(out["known2"]) == read(out["known"])  # nothing that arrived after ts counts as known
    by_time = read(out["time2"])
    stream_cols = ("cart", "last_searches", "last_event_time", "category_clicks_1h", "user_sessions", "uv", "hot")
    keep = lambda d: {k: v for k, v in d.items() if k.startswith(stream_cols)}  # noqa: E731
    want = [keep(w) for w in expected(events + after, spine, known=False)]
    assert [keep(normalized(r | NO_30D)) for r in by_time] == want  # events after ts never count
    before = [keep(normalized(r)) for r in read(out["time"])]
    assert before != want  # events that arrived late count by event time: the two modes differ
