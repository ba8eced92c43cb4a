"""Backfills on a hand-written archive: gaps reported and marked, re-runs replace days
exactly, a corrupt file is named and nothing is written (real Spark, chDB, Redis)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from batch.backfill import backfill
from batch.reconcile import reconcile
from batch.spark import spark_session
from common.clickhouse import create_tables, get_client
from common.errors import PlatformError
from common.services import local_services
from features.definitions import STREAM_FEATURES
from tests.archive import at, write_archive

pytestmark = pytest.mark.slow
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
        first = backfill(settings, D - timedelta(days=2), D)
        assert first.done == [str(D - timedelta(days=1)), str(D)]
        assert first.skipped == [str(D - timedelta(days=2))]
        assert list(first.incomplete) == [str(D)] and f"{D} 11:00" in first.incomplete[str(D)]
        counts = batch_counts(settings)
        assert counts["uv_1m"] == 3
        backfill(settings, D - timedelta(days=2), D)
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
        spark_session(settings).stop()


def test_corrupt_archive_file_is_named_and_nothing_written(settings):
    write_archive(settings, [click(1, D, 10)])
    part = next(settings.archive_dir.rglob("part-*"))
    with part.open("ab") as fh:
        fh.write(b'{"user_id": 1, "event_ty\n')
    create_tables(settings)
    try:
        with pytest.raises(PlatformError, match="corrupt archive file") as e:
            reconcile(settings, D)
        assert str(part) in str(e.value)
        assert set(batch_counts(settings).values()) == {0}
    finally:
        spark_session(settings).stop()
