"""Drill 6, a late-data storm: 30% of the events arrive 1 to 60 minutes late. Through the
real stream (`replay`: PyFlink, Kafka, Redis, chDB) and the real batch (`batch reconcile`:
Spark): the stream counts exactly the late events the watermark defines (so does the exporter's
late-event metric), the consistency check explains every stream/batch difference by them, and
after reconciliation the serving views hold every event, late ones included."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from common.clickhouse import get_client
from dq_checks.consistency import consistency
from features.adapters import to_json
from features.ecommerce import STREAM_FEATURES
from features.generator import GeneratorConfig, generate
from monitoring.outputs import StreamOutputs
from tests import reference as ref
from tests.conftest import cli, env_of, run_batch
from tests.pipeline import ms

pytestmark = pytest.mark.slow
D = date(2026, 1, 1)
START = int(datetime(2026, 1, 1, 2, tzinfo=UTC).timestamp() * 1000)  # late events stay on D


def test_a_late_storm_is_counted_explained_and_reconciled(settings, tmp_path):
    cfg = GeneratorConfig(
        seed=5, users=300, items=600, categories=20, events_per_second=1.0, start_ms=START,
        late=0.3, late_min_ms=60_000, late_max_ms=3_600_000,
    )  # fmt: skip
    events = list(generate(cfg, 6000))
    accepted = ref.accept(events)
    late = sum(e["late"] for e in accepted)
    assert late > 0.25 * len(events)  # the storm: most shifted events are late by the watermark's rule
    src = tmp_path / "events.jsonl"
    src.write_bytes(b"".join(to_json(e) + b"\n" for e in events))
    counted = StreamOutputs(settings.archive_dir, settings.dead_letter_dir)
    counted.poll()

    replay = cli(["replay", "--format", "jsonl", str(src)], env_of(settings))
    out = replay.communicate(timeout=900)[0].decode()
    assert replay.returncode == 0, out[-3000:]
    counted.poll()
    assert counted.late == late  # lf_stream_late_events_total

    batch = run_batch(settings, "reconcile", "--date", str(D))
    assert batch.returncode == 0, batch.stdout + batch.stderr
    results = {r.feature: r for r in consistency(settings, D)}
    assert set(results) == {f.name for f in STREAM_FEATURES}
    for name, r in results.items():
        m = r.metrics
        assert r.passed and m["unexplained"] == 0, (name, m, r.sample)
        assert m["explained_by_late"] == m["only_stream"] + m["only_batch"] + m["value_mismatches"], name
    assert all(results[f.name].metrics["explained_by_late"] > 0 for f in STREAM_FEATURES if f.windowed)

    # the serving views after reconciliation: every event counted, as if none had been late
    on_time = [{**e, "late": False} for e in accepted]
    ch = get_client(settings)
    uv = {ms(w): (u, n) for w, _e, u, n in ch.query("SELECT * FROM features.uv_1m").result_rows}
    assert uv == ref.uv_1m(on_time)
    stream_uv = {ms(w): (u, n) for w, _e, u, n in ch.query("SELECT * FROM features.uv_1m_stream FINAL").result_rows}
    assert stream_uv == ref.uv_1m(accepted) != uv  # the stream alone left the late events out
    tiles = ch.query("SELECT user_id, category_id, window_start, clicks FROM features.category_clicks_1h").result_rows
    got = {(u, c, ms(w)): n for u, c, w, n in tiles}
    assert got == ref.category_clicks_1h(on_time)
    sessions = ch.query("SELECT * FROM features.user_sessions").result_rows
    assert {(u, ms(a), ms(b), n, c, ca, p) for u, a, b, n, c, ca, p in sessions} == ref.user_sessions(on_time)
