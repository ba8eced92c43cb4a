"""A generated day with late events through the real stream (`replay`: PyFlink, Kafka,
Redis, chDB) and the real batch (`batch reconcile`: Spark): every check passes, and the
stream/batch differences are all explained by the late events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from common.clickhouse import get_client
from common.services import local_services
from dq_checks import run_checks
from features.adapters import to_json
from features.ecommerce import STREAM_FEATURES
from features.generator import GeneratorConfig, generate
from tests.conftest import cli, env_of, run_batch

pytestmark = pytest.mark.slow
D = date(2026, 1, 1)  # the generator's first day


def test_clean_generated_day_passes_every_check(settings, tmp_path):
    # 3,000 events over 100 minutes of event time, 3% of them late
    cfg = GeneratorConfig(seed=7, users=200, items=500, categories=20, events_per_second=0.5, late=0.03)
    events = list(generate(cfg, 3000))
    src = tmp_path / "events.jsonl"
    src.write_bytes(b"".join(to_json(e) + b"\n" for e in events))
    replay = cli(["replay", "--format", "jsonl", str(src)], env_of(settings))
    out = replay.communicate(timeout=900)[0].decode()
    assert replay.returncode == 0, out[-3000:]
    batch = run_batch(settings, "reconcile", "--date", str(D))
    assert batch.returncode == 0, batch.stdout + batch.stderr
    newest = datetime.fromtimestamp(max(e["event_time"] for e in events) / 1000, UTC)
    redis = [svc for svc in local_services(settings) if svc.name == "redis" and svc.start()]
    try:
        results = run_checks(settings, D, now=newest + timedelta(seconds=60))
    finally:
        for svc in redis:
            svc.stop()
    # no catalogue on this day: every event of an item is of an unknown item, so the catalogue
    # features' keys are all null (a WARN of validity_values; referential_completeness is INFO)
    catalogue = {f.name for f in STREAM_FEATURES if f.enriched}
    nulls = [r for r in results if r.feature in catalogue and r.check == "validity_values"]
    assert nulls and all(r.severity == "WARN" for r in nulls)
    assert all(v == 1 for r in nulls for k, v in r.metrics.items() if "null_rate" in k)
    assert [r for r in results if not r.passed and r not in nulls] == []
    checks = {(r.check, r.feature) for r in results}
    assert {("freshness", "online_store"), ("completeness_events", "archive")} <= checks
    cons = {r.feature: r.metrics for r in results if r.check == "consistency"}
    assert set(cons) == {f.name for f in STREAM_FEATURES}
    windowed = [f.name for f in STREAM_FEATURES if f.windowed]
    # the late events made real differences, and each one is explained by them
    assert all(cons[n]["late_events"] > 0 for n in windowed)
    assert sum(cons[n]["explained_by_late"] for n in windowed) > 0
    for m in cons.values():
        assert m["unexplained"] == 0
        assert m["explained_by_late"] == m["only_stream"] + m["only_batch"] + m["value_mismatches"]
    events_check = next(r for r in results if r.check == "completeness_events")
    assert events_check.metrics["positions"] == events_check.metrics["archived_or_dead"] == 3000

    # the same day with one minute of uv_1m dropped from the stream: named, not explained
    get_client(settings).command(
        "ALTER TABLE features.uv_1m_stream DELETE WHERE toHour(window_start) = 1 AND toMinute(window_start) = 7 "
        "SETTINGS mutations_sync = 1"
    )
    uv = next(r for r in run_checks(settings, D) if r.check == "consistency" and r.feature == "uv_1m")
    assert not uv.passed and uv.metrics["unexplained"] == 1
    assert uv.sample == ["window_start=2026-01-01 01:07:00.000: only in batch"]
