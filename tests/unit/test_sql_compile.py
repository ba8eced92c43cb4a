"""The stream queries are compiled from features/, not written by hand. The exact text of
every compiled query is in the snapshots (tests/unit/test_snapshots.py); these are the rules it keeps."""

from dataclasses import replace

from common.settings import load_settings
from features.definitions import Measure, Session, WindowAggregate
from features.ecommerce import STREAM_FEATURES
from features.events import rejection_sql
from streaming.deployment import definition_fingerprint
from streaming.sql import compile_feature
from warehouse.schema import ddl


def test_sliding_window_is_built_from_tiles():
    q = compile_feature(next(f for f in STREAM_FEATURES if f.name == "category_clicks_1h"))[1]
    assert "TUMBLE" in q.select and "HOP" not in q.select and "INTERVAL '300' SECOND" in q.select


def test_windowed_features_read_on_time_events_only():
    for f in STREAM_FEATURES:
        view = compile_feature(f)[0]
        assert (" FROM events_on_time" in view) == f.windowed
        assert ("catalog_items FOR SYSTEM_TIME AS OF" in view) == f.enriched


def test_enriched_features_join_only_their_own_events():
    """The filter comes before the join, so a join holds and looks up only its feature's events."""
    for f in (f for f in STREAM_FEATURES if f.enriched):
        view = compile_feature(f)[0]
        assert f"WHERE {f.source_filter}) AS e LEFT JOIN catalog_items" in view


def test_rules_give_reasons():
    sql = rejection_sql(0, 10)
    for reason in ("missing user_id", "unknown event_type", "negative price", "event_time out of range"):
        assert reason in sql


def test_clickhouse_ddl_has_a_table_per_feature(tmp_path):
    stmts = "\n".join(ddl(load_settings(home=tmp_path)))
    for f in STREAM_FEATURES:
        assert f"features.{f.name}_stream" in stmts
    assert "ARRAY JOIN range(12)" in stmts  # the 1 h view over 5 min tiles


def test_a_changed_input_filter_changes_the_definition(tmp_path):
    """The filter lives in the feature's input view, not its SELECT: the fingerprint must see it."""
    before = definition_fingerprint(load_settings(home=tmp_path))
    favs = tmp_path / "favs.py"
    favs.write_text(
        "import dataclasses\nfrom features.ecommerce import FEATURES as SHIPPED\n"
        "FEATURES = [dataclasses.replace(f, source_filter=\"event_type = 'fav'\") if f.windowed else f "
        "for f in SHIPPED]\n"
    )
    assert definition_fingerprint(load_settings(home=tmp_path, feature_repo=favs)) != before


def test_a_setting_given_its_default_value_is_the_same_definition(tmp_path):
    """state_ttl_hours read from a setting is 168.0, its default 168: one definition, no redeploy."""
    given = load_settings(home=tmp_path, stream={"state_ttl_hours": 168, "checkpoint_interval_ms": 2000})
    assert definition_fingerprint(given) == definition_fingerprint(load_settings(home=tmp_path))


def test_counted_measures_call_our_aggregate_function_in_one_window_aggregate():
    """top_k and histogram in any window: the functions of jvm/ registered before the feature's
    INSERT (so the compiled plan names them), one window aggregate, no second level."""
    f = next(f for f in STREAM_FEATURES if f.name == "user_sessions")
    measures = (*f.aggregation.measures, Measure("top", "top_k", "item_id", k=3))  # type: ignore[union-attr]
    both = (*measures, Measure("hist", "histogram", "event_type", k=2))
    _, q = compile_feature(replace(f, aggregation=WindowAggregate(Session(300), both)))
    assert q.functions == (
        "CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS LF_TOP_K AS 'io.lambdafeatures.flink.TopK' LANGUAGE JAVA",
        "CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS LF_HISTOGRAM AS 'io.lambdafeatures.flink.Histogram' "
        "LANGUAGE JAVA",
    )
    assert "LF_TOP_K(CAST(item_id AS STRING), 3) AS top" in q.select
    assert "LF_HISTOGRAM(CAST(event_type AS STRING), 2) AS hist" in q.select
    assert q.select.count("TABLE(") == 1
    _, one = compile_feature(replace(f, aggregation=WindowAggregate(Session(300), measures)))
    assert len(one.functions) == 1 and "LF_TOP_K" in one.functions[0]
    assert all(compile_feature(f)[1].functions == () for f in STREAM_FEATURES)  # only where a feature counts
