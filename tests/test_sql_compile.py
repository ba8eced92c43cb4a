"""The stream queries are compiled from features/, not written by hand."""

from common.settings import load_settings
from features.definitions import STREAM_FEATURES
from features.events import rejection_sql
from streaming.sql import compile_feature
from warehouse.schema import ddl


def test_every_stream_feature_compiles():
    outputs = {compile_feature(f)[1].output for f in STREAM_FEATURES}
    assert outputs == {
        "cart_amount",
        "category_clicks_1h_tiles",
        "uv_1m",
        "user_sessions",
        "last_searches",
        "hot_items_5m",
        "last_event_time",
    }


def test_sliding_window_is_built_from_tiles():
    q = compile_feature(next(f for f in STREAM_FEATURES if f.name == "category_clicks_1h"))[1]
    assert "TUMBLE" in q.select and "HOP" not in q.select and "INTERVAL '300' SECOND" in q.select


def test_windowed_features_read_on_time_events_only():
    for f in STREAM_FEATURES:
        view = compile_feature(f)[0]
        assert ("events_on_time" in view) == f.windowed


def test_rules_give_reasons():
    sql = rejection_sql(0, 10)
    for reason in ("missing user_id", "unknown event_type", "negative price", "event_time out of range"):
        assert reason in sql


def test_clickhouse_ddl_has_a_table_per_feature(tmp_path):
    stmts = "\n".join(ddl(load_settings(home=tmp_path)))
    for f in STREAM_FEATURES:
        assert f"features.{f.name}_stream" in stmts
    assert "ARRAY JOIN range(12)" in stmts  # the 1 h view over 5 min tiles
