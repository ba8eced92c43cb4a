"""Backfills on a hand-written archive: gaps reported and marked, re-runs replace days
exactly, a corrupt file is named and nothing is written (real Spark, chDB, Redis)."""

from __future__ import annotations

from datetime import date, timedelta

from common.clickhouse import get_client
from common.services import local_services
from features.ecommerce import STREAM_FEATURES
from tests.conftest import run_batch
from tests.support.archive import at, write_archive
from warehouse.schema import create_tables

D = date(2026, 2, 10)


def click(user: int, day: date, hour: int) -> dict:
    return {"user_id": user, "event_type": "click", "item_id": user, "category_id": 1, "event_time": at(day, hour)}


def batch_counts(settings) -> dict[str, int]:
    ch = get_client(settings)
    return {f.name: ch.query(f"SELECT count() FROM features.{f.name}_batch").result_rows[0][0] for f in STREAM_FEATURES}


def test_backfill_reports_gaps_and_reruns_exactly(settings):
    write_archive(settings, [click(1, D - timedelta(days=1), 10), click(1, D, 10), click(2, D, 12)])
    try:
        for svc in local_services(settings):
            svc.start()
        args = ("backfill", "--start", str(D - timedelta(days=2)), "--end", str(D))
        first = run_batch(settings, *args)
        assert first.returncode == 0, first.stdout + first.stderr
        out = " ".join(first.stdout.split())
        assert "backfilled 2 day(s)" in out and f"no archive, skipped: {D - timedelta(days=2)}" in out
        assert f"{D} incomplete" in out and f"{D} 11:00" in out and f"{D - timedelta(days=1)} incomplete" not in out
        counts = batch_counts(settings)
        assert counts["uv_1m"] == 3
        assert run_batch(settings, *args).returncode == 0
        assert batch_counts(settings) == counts  # each day replaced, nothing doubled
        marks = (
            get_client(settings)
            .query(
                "SELECT day, complete, gaps FROM features.reconciled_days FINAL WHERE feature = 'uv_1m' ORDER BY day"
            )
            .result_rows
        )
        # D-1 is whole (nothing before the archive began is a gap); D misses 11:00
        assert [(str(d), c) for d, c, _ in marks] == [(str(D - timedelta(days=1)), 1), (str(D), 0)]
        assert "11:00" in marks[1][2]
    finally:
        for svc in local_services(settings):
            svc.stop()


def test_corrupt_archive_file_is_named_and_nothing_written(settings):
    write_archive(settings, [click(1, D, 10)])
    part = next(settings.archive_dir.rglob("part-*"))
    with part.open("ab") as fh:
        fh.write(b'{"user_id": 1, "event_ty\n')
    create_tables(settings)
    p = run_batch(settings, "reconcile", "--date", str(D))
    out = "".join(p.stdout.split())
    assert p.returncode == 2 and "corruptarchivefile" in out and str(part).replace(" ", "") in out, p.stdout
    assert "Traceback" not in p.stdout + p.stderr
    assert set(batch_counts(settings).values()) == {0}  # nothing written
