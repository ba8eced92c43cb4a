"""The daily graph through the Dagster API on small data: the stream over two days of
generated events, then archive, batch features, ClickHouse tables, checks and the online
store for both days in one run; a failed consistency check holds the publication back."""

from datetime import date, timedelta

from common.archive import archived_days
from common.clickhouse import get_client
from common.redis_store import get_redis
from common.services import local_services
from features.adapters import to_json
from features.ecommerce import BATCH_FEATURES, STREAM_FEATURES
from features.generator import GeneratorConfig, generate
from orchestration.instance import materialize_days, replay_stream

DAYS = [date(2026, 1, 1), date(2026, 1, 2)]


def test_daily_graph_for_two_days_then_a_check_blocks_publication(platform_env, tmp_path):
    s = platform_env
    events = tmp_path / "events.jsonl"
    cfg = GeneratorConfig(seed=7, users=200, items=500, events_per_second=4000 / (2 * 86400), late=0.01)
    events.write_bytes(b"".join(to_json(e) + b"\n" for e in generate(cfg, 4000)))
    services = local_services(s)
    try:
        stream = replay_stream(s, [str(events)], "jsonl")
        assert stream.success, stream.error
        assert archived_days(s) == DAYS

        run = materialize_days(s, DAYS[0], DAYS[-1])
        assert run.success, run.error
        expected = {"archive", "online_store"} | {
            f"{layer}/{f.name}" for f in (*STREAM_FEATURES, *BATCH_FEATURES) for layer in ("lake", "clickhouse")
        }
        assert expected <= set(run.materialized)
        consistency = [c for c in run.checks if c[1] == "consistency"]
        assert len(consistency) == len(STREAM_FEATURES)
        assert all(passed for _, _, passed, _ in consistency), consistency

        ch = get_client(s)
        db = s.clickhouse.database
        reconciled = ch.query(
            f"SELECT day, count() FROM {db}.reconciled_days FINAL GROUP BY day ORDER BY day"
        ).result_rows
        # every feature on each day, and the lead-in day before the first: the sliding windows
        # that start on it and hold events of the first day (docs/batch.md)
        lead_in = DAYS[0] - timedelta(days=1)
        assert reconciled == [(lead_in, 1)] + [(d, len(STREAM_FEATURES)) for d in DAYS]
        as_of = ch.query(f"SELECT DISTINCT as_of FROM {db}.top_brands_30d FINAL ORDER BY as_of").result_rows
        assert [r[0] for r in as_of] == DAYS
        assert ch.query(f"SELECT count() FROM {db}.dq_results").result_rows[0][0] > 0
        redis = get_redis(s)
        published = [k for k in redis.scan_iter(f"{s.redis.key_prefix}*") if redis.hexists(k, "top_brands_30d")]
        assert published

        # the stream lost a window: consistency fails with ERROR and the publication does not run
        ch.command(
            f"ALTER TABLE {db}.uv_1m_stream DELETE WHERE toDate(window_start) = '{DAYS[1]}' "
            "AND toMinute(window_start) = 30 SETTINGS mutations_sync = 1"
        )
        blocked = materialize_days(s, DAYS[1], DAYS[1])
        failed = [c for c in blocked.checks if not c[2]]
        assert ("clickhouse/uv_1m", "consistency", False, "ERROR") in failed
        assert "online_store" not in blocked.materialized
    finally:
        for svc in services:
            svc.stop()
