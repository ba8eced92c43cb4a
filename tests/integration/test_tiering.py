"""Tiering on the local cold tier (embedded default) with chDB: plan, move, views, restore."""

from __future__ import annotations

from datetime import date

import pytest

import tiering
from common.clickhouse import close_clients, get_client
from common.errors import PlatformError
from common.settings import load_settings
from tests.conftest import isolated_settings
from tests.support.tiering_data import DUE_DAYS, TODAY, answers, hot_days, seed
from tiering import manifest
from tiering.cold_views import view_sql
from tiering.layout import bucket_url, object_key
from warehouse.schema import ddl
from warehouse.tables import tiered_tables


@pytest.fixture
def tier_settings(tmp_path):
    yield isolated_settings(
        home=tmp_path / "home",
        tiering={"rows_per_object": 500},
    )
    close_clients()


def test_tiered_tables_are_the_day_partitioned_window_tables(tmp_path):
    assert sorted(tiered_tables(load_settings(home=tmp_path))) == sorted(
        [
            "uv_1m_stream",
            "uv_1m_batch",
            "category_clicks_1h_tiles_stream",
            "category_clicks_1h_batch",
            "user_sessions_stream",
            "user_sessions_batch",
            "hot_items_5m_stream",
            "hot_items_5m_batch",
            "brand_clicks_1h_stream",
            "brand_clicks_1h_batch",
            "category_purchases_1h_stream",
            "category_purchases_1h_batch",
        ]
    )


def test_views_read_the_store_only_once_something_is_cold(tmp_path):
    s = load_settings(home=tmp_path)
    assert not any("file(" in stmt or "s3(" in stmt for stmt in ddl(s))
    (view,) = [x for x in ddl(s) if x.startswith("CREATE OR REPLACE VIEW features.uv_1m AS")]
    assert "FROM features.uv_1m_stream_cold WHERE dt NOT IN (SELECT toDate(partition) FROM system.parts" in view
    assert "null(" in view_sql(s, "uv_1m_stream", [])
    cold = view_sql(s, "uv_1m_stream", [date(2024, 1, 1), date(2024, 1, 2)])
    assert cold.startswith("CREATE OR REPLACE VIEW features.uv_1m_stream_cold AS")
    assert "uv_1m_stream/dt={2024-01-01,2024-01-02}/*.parquet" in cold


def test_layout_keys_and_urls(tmp_path):
    s = load_settings(home=tmp_path, tiering={"bucket": "lf-cold", "prefix": "/p/q/", "endpoint_url": "http://h:9"})
    assert object_key(s, "uv_1m_stream", date(2024, 1, 2), 3) == "p/q/uv_1m_stream/dt=2024-01-02/part-00003.parquet"
    assert bucket_url(s) == "http://h:9/lf-cold/p/q/"
    oss = load_settings(
        home=tmp_path,
        tiering={
            "bucket": "lf-cold",
            "endpoint_url": "https://oss-cn-hangzhou.aliyuncs.com",
            "addressing_style": "virtual",
        },
    )
    assert bucket_url(oss) == "https://lf-cold.oss-cn-hangzhou.aliyuncs.com/features/"
    aws = load_settings(home=tmp_path, tiering={"bucket": "lf-cold", "region": "eu-west-1"})
    assert bucket_url(aws) == "https://lf-cold.s3.eu-west-1.amazonaws.com/features/"


def test_bad_tiering_settings_name_the_variable(tmp_path):
    with pytest.raises(PlatformError, match="LAMBDA_FEATURES_TIERING__BUCKET"):
        load_settings(home=tmp_path, tiering={"bucket": "Not_A_Bucket"})
    with pytest.raises(PlatformError, match="LAMBDA_FEATURES_TIERING__MULTIPART_CHUNK_MB"):
        load_settings(home=tmp_path, tiering={"multipart_chunk_mb": 1})


def test_move_keeps_every_answer_and_restore_brings_a_day_back(tier_settings):
    s = tier_settings
    seed(s)
    before = answers(s)

    planned = tiering.run(s, today=TODAY, dry_run=True)
    assert {(p.table, p.day) for p in planned.planned} >= {("uv_1m_stream", d) for d in DUE_DAYS}
    assert all(p.day in DUE_DAYS and p.rows > 0 and p.bytes > 0 for p in planned.planned)
    assert hot_days(s, "uv_1m_stream") == [*DUE_DAYS, date(2024, 1, 4), date(2024, 1, 5)]  # dry run moved nothing

    report = tiering.run(s, today=TODAY)
    assert [(m.table, m.day) for m in report.moves] == [(p.table, p.day) for p in planned.planned]
    assert report.rows == sum(m.rows for m in report.moves) > 0 and report.objects >= len(report.moves)
    uv_day1 = next(m for m in report.moves if (m.table, m.day) == ("uv_1m_stream", DUE_DAYS[0]))
    assert (uv_day1.rows, uv_day1.objects) == (1440, 3)  # 500 rows per object
    assert uv_day1.uri.startswith("file://") and (s.cold_dir / object_key(s, "uv_1m_stream", DUE_DAYS[0], 2)).is_file()
    for table in ("uv_1m_stream", "category_clicks_1h_tiles_stream", "user_sessions_stream", "hot_items_5m_stream"):
        assert hot_days(s, table) == [date(2024, 1, 4), date(2024, 1, 5)]
    assert hot_days(s, "uv_1m_batch") == []
    assert answers(s) == before
    assert all(c.ok for c in tiering.verify(s)) and len(tiering.verify(s)) == len(report.moves)
    assert tiering.run(s, today=TODAY).moves == []  # nothing left to do

    assert tiering.restore(s, "uv_1m_stream", DUE_DAYS[1]) == 1440
    assert DUE_DAYS[1] in hot_days(s, "uv_1m_stream")
    assert not list((s.cold_dir / "features/uv_1m_stream" / f"dt={DUE_DAYS[1]}").glob("*"))
    assert answers(s) == before
    assert manifest.get(s, "uv_1m_stream", DUE_DAYS[1]).state == "restored"
    assert tiering.run(s, today=TODAY).moves == []  # a restored day stays hot...
    again = tiering.run(s, today=TODAY, include_restored=True)  # ...until asked
    assert [(m.table, m.day) for m in again.moves] == [("uv_1m_stream", DUE_DAYS[1])]
    assert answers(s) == before


def test_a_day_written_again_after_its_move_is_served_hot_then_moved_again(tier_settings):
    s = tier_settings
    seed(s)
    tiering.run(s, today=TODAY)
    c = get_client(s)
    # a re-run of the batch for a cold day: its rows replace the day
    c.command(
        "INSERT INTO features.uv_1m_batch SELECT toDateTime64('2024-01-02 00:00:00', 3, 'UTC') + number * 60 AS ws, "
        "ws + 60, 9, 90 FROM numbers(1440)"
    )
    expected = [(date(2024, 1, 2), 9 * 1440, 90 * 1440)]
    rollup = "SELECT toDate(window_start) d, sum(uv), sum(events) FROM features.uv_1m WHERE d = '2024-01-02' GROUP BY d"
    assert c.query(rollup).result_rows == expected  # not doubled with the cold copy
    moved = tiering.run(s, today=TODAY).moves
    assert [(m.table, m.day) for m in moved] == [("uv_1m_batch", date(2024, 1, 2))]
    assert c.query(rollup).result_rows == expected
    assert all(c.ok for c in tiering.verify(s))


def test_restore_of_an_unknown_table_or_day_is_a_clear_error(tier_settings):
    seed(tier_settings)
    with pytest.raises(PlatformError, match="'cart_amount_stream' is not a tiered table"):
        tiering.restore(tier_settings, "cart_amount_stream", DUE_DAYS[0])
    with pytest.raises(PlatformError, match="uv_1m_stream has no cold day 2024-01-01"):
        tiering.restore(tier_settings, "uv_1m_stream", DUE_DAYS[0])
