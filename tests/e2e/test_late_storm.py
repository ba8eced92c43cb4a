"""Drill 6, a late-data storm: 30% of a generated day's events late by 1 to 60 minutes, through
the real stream (`replay`: PyFlink, Kafka, Redis, chDB) and the real batch (`batch reconcile`:
Spark), with the exporter and Prometheus watching. The exporter counts every late event,
LambdaFeaturesLateEventStorm fires, every data-quality check passes with each stream/batch
difference explained by the late events, and after the reconciliation the serving views equal
an independent computation over every event, late ones included."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from common.clickhouse import get_client
from common.services import local_services
from dq_checks import run_checks
from features.adapters import to_json
from features.ecommerce import STREAM_FEATURES
from features.generator import GeneratorConfig, generate
from tests.conftest import cli, env_of
from tests.support import reference as ref
from tests.support.pipeline import ms
from tests.support.stream_drill import firing, wait_for

D = date(2026, 1, 1)
START = datetime(2026, 1, 1, 2, tzinfo=UTC)  # an hour of lateness stays on the day


def exported(settings) -> dict[str, float]:
    """The exporter's samples without labels, by name (one scrape)."""
    text = requests.get(f"http://127.0.0.1:{settings.monitoring.exporter_port}/metrics", timeout=10).text
    return {s.name: s.value for fam in text_string_to_metric_families(text) for s in fam.samples if not s.labels}


@pytest.fixture
def settings(settings):
    """conftest's settings, with Prometheus scraping every second."""
    return settings.model_copy(update={"monitoring": settings.monitoring.model_copy(update={"scrape_interval_s": 1})})


def test_late_storm_is_counted_explained_and_reconciled(settings, tmp_path):
    # 3,000 events over 100 minutes of event time, 30% of them 1 to 60 minutes late
    cfg = GeneratorConfig(
        seed=7, users=200, items=500, categories=20, events_per_second=0.5,
        start_ms=int(START.timestamp() * 1000), late=0.3, late_min_ms=60_000, late_max_ms=3_600_000,
    )  # fmt: skip
    events = list(generate(cfg, 3000))
    src = tmp_path / "events.jsonl"
    src.write_bytes(b"".join(to_json(e) + b"\n" for e in events))
    services = local_services(settings)
    try:
        for svc in services:
            svc.start()
        # the exporter counts what appears after its first look at the archive
        wait_for(lambda: "lf_stream_archived_events_total" in exported(settings), 60, "the exporter")
        replay = cli(["replay", "--format", "jsonl", str(src)], env_of(settings))
        out = replay.communicate(timeout=900)[0].decode()
        assert replay.returncode == 0, out[-3000:]
        late = sum(1 for p in settings.archive_dir.rglob("part-*") for line in p.open() if '"late":true' in line)
        assert late > 0.2 * len(events)
        wait_for(lambda: exported(settings).get("lf_stream_late_events_total") == late, 60, "the exporter's late count")
        assert exported(settings)["lf_stream_archived_events_total"] == len(events)
        # the day's reconciliation runs while the alert's minute passes
        batch = cli(["batch", "reconcile", "--date", str(D)], env_of(settings))
        wait_for(lambda: firing(settings, "LambdaFeaturesLateEventStorm"), 180, "the late-event alert")
        out = batch.communicate(timeout=600)[0].decode()
        assert batch.returncode == 0, out[-3000:]
        newest = datetime.fromtimestamp(max(e["event_time"] for e in events) / 1000, UTC)
        results = run_checks(settings, D, now=newest + timedelta(seconds=60))

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
        assert all(cons[n]["explained_by_late"] > 0 for n in ("uv_1m", "user_sessions", "category_clicks_1h"))
        for m in cons.values():
            assert m["unexplained"] == 0
            assert m["explained_by_late"] == m["only_stream"] + m["only_batch"] + m["value_mismatches"]
        events_check = next(r for r in results if r.check == "completeness_events")
        assert events_check.metrics["positions"] == events_check.metrics["archived_or_dead"] == len(events)

        # reconciled, the serving views hold every event, late or not
        every = [{**e, "late": False} for e in ref.accept([{**e, "event_id": str(i)} for i, e in enumerate(events)])]
        ch = get_client(settings)
        uv = ch.query("SELECT window_start, uv, events FROM features.uv_1m").result_rows
        assert {ms(ws): (u, n) for ws, u, n in uv} == ref.uv_1m(every)
        sessions = ch.query("SELECT * FROM features.user_sessions").result_rows
        assert {(u, ms(a), ms(b), n, c, ca, p) for u, a, b, n, c, ca, p in sessions} == ref.user_sessions(every)

        # the same day with one minute of uv_1m dropped from the stream: named, not explained
        ch.command(
            "ALTER TABLE features.uv_1m_stream DELETE WHERE toHour(window_start) = 3 AND toMinute(window_start) = 7 "
            "SETTINGS mutations_sync = 1"
        )
        uv = next(r for r in run_checks(settings, D) if r.check == "consistency" and r.feature == "uv_1m")
        assert not uv.passed and uv.metrics["unexplained"] == 1
        assert uv.sample == ["window_start=2026-01-01 03:07:00.000: only in batch"]
    finally:
        for svc in services:
            svc.stop()
