"""A backfill computes each feature in one Spark query over its whole range of days. Its lake
must equal an independent computation of the same features, day by day (the benchmark's
hand-written DuckDB SQL, bench/batch_duckdb.py), on generated events with late ones, and a
day reconciled on its own must equal the same day of the range (real Spark, chDB, Redis)."""

from __future__ import annotations

from datetime import date, timedelta

from bench.batch_archive import write_generated_archive
from bench.batch_bench import compare_lakes
from bench.batch_duckdb import backfill as duckdb_backfill
from common.lake import feature_day_dir
from common.services import local_services
from common.settings import load_settings
from features.ecommerce import FEATURES, STREAM_FEATURES
from features.generator import GeneratorConfig
from tests.conftest import run_batch

# 36 archived days, sparse per user, and the last 5 backfilled: the 7-day state and the
# 30-day spans both reach back past the range, and many users fall out of them
ARCHIVED, EVENTS = 36, 30_000
FIRST = date(2026, 1, 1) + timedelta(days=ARCHIVED - 5)
DAYS = 5


def day_rows(settings, name: str, day: date) -> list[str]:
    import pyarrow.parquet as pq

    return sorted(map(repr, pq.read_table(feature_day_dir(settings, name, day)).to_pylist()))


def test_range_backfill_equals_a_day_by_day_reference(settings, tmp_path):
    cfg = GeneratorConfig(users=3000, items=300, events_per_second=EVENTS / (ARCHIVED * 86_400), late=0.03)
    late = write_generated_archive(settings.archive_dir, cfg, EVENTS)
    assert late > 100
    last = FIRST + timedelta(days=DAYS - 1)
    try:
        for svc in local_services(settings):
            svc.start()
        p = run_batch(settings, "backfill", "--start", str(FIRST), "--end", str(last), "--no-publish")
        assert p.returncode == 0, p.stdout + p.stderr
        assert f"backfilled {DAYS} day(s)" in " ".join(p.stdout.split())

        ref = load_settings(home=tmp_path / "reference")
        ref.lake_features_dir.parent.mkdir(parents=True)
        ref.archive_dir.symlink_to(settings.archive_dir)
        duckdb_backfill(ref, FIRST, last, stores=False)
        verdicts = compare_lakes(settings.lake_features_dir, ref.lake_features_dir)
        # the hand-written reference has no catalogue join: the enriched features are compared in
        # tests/e2e/test_catalog_join.py
        compared = {k: v for k, v in verdicts.items() if not v.startswith("only in")}
        assert set(compared) == {f.name for f in FEATURES if not f.enriched}, verdicts
        assert not [v for v in compared.values() if "DIFFER" in v], verdicts
        assert not [v for v in compared.values() if v.startswith("0 ")], verdicts  # every feature has rows

        mid = FIRST + timedelta(days=2)
        in_range = {f.name: day_rows(settings, f.name, mid) for f in STREAM_FEATURES}
        p = run_batch(settings, "reconcile", "--date", str(mid))
        assert p.returncode == 0, p.stdout + p.stderr
        assert {f.name: day_rows(settings, f.name, mid) for f in STREAM_FEATURES} == in_range
    finally:
        for svc in local_services(settings):
            svc.stop()
