"""Sliding windows that start on a day without archive but hold events of the next day (the
first archived day, or the day after a gap) come out of the batch too: the lake, the serving
view and the consistency check agree with an independent computation (real Spark, chDB)."""

from __future__ import annotations

import random
import shutil
from datetime import UTC, date, datetime, timedelta

from common.clickhouse import get_client
from common.lake import feature_day_dir, feature_dir
from dq_checks.consistency import compare
from features.ecommerce import CATEGORY_CLICKS_1H
from tests.conftest import run_batch
from tests.support import reference
from tests.support.archive import at, write_archive

D = date(2026, 2, 10)  # the first archived day; D+1 has no archive, D+2 has
GAP = D + timedelta(days=1)
NAME = CATEGORY_CLICKS_1H.name


def clicks() -> list[dict]:
    """Clicks in the first and the last hour of D and D+2 (so windows reach across each
    midnight both ways), a few at noon, and other events that the feature ignores."""
    rng = random.Random(11)
    out = []
    for day in (D, D + timedelta(days=2)):
        for lo, hi in ((0, 3_600_000), (12 * 3_600_000, 12 * 3_600_000 + 600_000), (23 * 3_600_000, 86_400_000)):
            for _ in range(60):
                t = at(day, 0) + rng.randrange(lo, hi)
                kind = rng.choice(["click"] * 4 + ["cart", "login"])
                out.append(
                    {"user_id": rng.randint(1, 6), "event_type": kind, "item_id": 5, "category_id": rng.randint(1, 3)}
                    | {"event_time": t}
                )
    out.append({"user_id": 1, "event_type": "click", "item_id": 5, "category_id": 1, "event_time": at(D, 0)})
    return out


def lake_rows(settings) -> dict[tuple, int]:
    """Every day of the feature in the lake, by (user, category, window start in ms)."""
    import pyarrow.parquet as pq

    rows = [r for p in sorted(feature_dir(settings, NAME).glob("dt=*")) for r in pq.read_table(p).to_pylist()]
    keys = [
        (r["user_id"], r["category_id"], int(r["window_start"].replace(tzinfo=UTC).timestamp() * 1000)) for r in rows
    ]
    assert len(keys) == len(set(keys)), "a window in two days of the lake"
    return {k: r["clicks"] for k, r in zip(keys, rows, strict=True)}


def serving_rows(settings) -> dict[tuple, int]:
    rows = (
        get_client(settings)
        .query(f"SELECT user_id, category_id, toUnixTimestamp64Milli(window_start), clicks FROM features.{NAME}")
        .result_rows
    )
    assert len(rows) == len({r[:3] for r in rows}), "a window twice in the serving view"
    return {r[:3]: r[3] for r in rows}


def test_windows_before_the_first_archived_day_and_after_a_gap(settings):
    events = [{**e, "late": False} for e in clicks()]
    write_archive(settings, events)
    expected = reference.category_clicks_1h(events)
    lead_in = {k for k in expected if datetime.fromtimestamp(k[2] / 1000, UTC).date() in (D - timedelta(days=1), GAP)}
    assert len(lead_in) > 10  # windows that start on a day without archive

    p = run_batch(settings, "backfill", "--start", str(D), "--end", str(D + timedelta(days=2)), "--no-publish")
    assert p.returncode == 0, p.stdout + p.stderr
    assert lake_rows(settings) == expected
    assert serving_rows(settings) == expected  # the batch alone: no stream rows yet
    marks = {
        day: (complete, gaps)
        for day, complete, gaps in get_client(settings)
        .query(f"SELECT day, complete, gaps FROM features.reconciled_days FINAL WHERE feature = '{NAME}'")
        .result_rows
    }
    assert sorted(marks) == [D - timedelta(days=1), D, GAP, D + timedelta(days=2)]
    # the day before the archive began is whole; the gap after it is not
    assert marks[D - timedelta(days=1)] == (1, "") and marks[GAP] == (0, f"{GAP} (no archive)")

    # the stream's tiles of the same events: the serving view still shows each window once,
    # and stream and batch agree on every reconciled day, the lead-in days included
    ch = get_client(settings)
    tiles = [
        (user, datetime.fromtimestamp(t / 1000, UTC), datetime.fromtimestamp((t + 300_000) / 1000, UTC), cat, n)
        for (user, cat, t), n in reference.category_tiles(events).items()
    ]
    ch.insert(
        f"features.{NAME}_tiles_stream",
        tiles,
        column_names=["user_id", "window_start", "window_end", "category_id", "clicks"],
    )
    assert serving_rows(settings) == expected
    for day in sorted(marks):
        r = compare(settings, CATEGORY_CLICKS_1H, day)
        assert r.passed and r.metrics["only_stream"] == r.metrics["only_batch"] == 0, (day, r.message)

    # reconciling the first day alone computes its lead-in day again
    shutil.rmtree(feature_day_dir(settings, NAME, D - timedelta(days=1)))
    ch.command(f"ALTER TABLE features.{NAME}_batch DROP PARTITION '{D - timedelta(days=1)}'")
    p = run_batch(settings, "reconcile", "--date", str(D))
    assert p.returncode == 0, p.stdout + p.stderr
    assert lake_rows(settings) == expected
    assert serving_rows(settings) == expected
