"""Feature repositories: how one is found and read, and each check it must pass, with an error
that names the feature and the field. The engines' checks of its SQL: tests/integration/test_repo_engines.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from common.errors import PlatformError
from common.repository import load_features
from common.settings import load_settings
from features import ecommerce
from features.definitions import (
    DayMeasure,
    Feature,
    Hop,
    LastN,
    Measure,
    RollingStats,
    RollingTopN,
    Session,
    TopN,
    Tumble,
    WindowAggregate,
    bigint,
)
from features.events import EventAttribute
from features.repository import FeatureRepository, problems, resolved

CLICKS = ecommerce.CATEGORY_CLICKS_1H
SESSIONS = ecommerce.USER_SESSIONS


def _problems(*features, attributes=()) -> list[str]:
    return problems(FeatureRepository("test", tuple(features), tuple(attributes)))


def _one(*features, attributes=()) -> str:
    found = _problems(*features, attributes=attributes)
    assert len(found) == 1, found
    return found[0]


def test_the_shipped_repository_is_the_default_and_passes(tmp_path: Path):
    repo = load_features(load_settings(home=tmp_path))
    assert repo.source == "features.ecommerce"
    assert repo.features == ecommerce.FEATURES and repo.stream == ecommerce.STREAM_FEATURES
    assert repo.batch == ecommerce.BATCH_FEATURES and repo.event_attributes == ()
    assert _problems(*ecommerce.FEATURES) == []


def test_a_file_and_a_package_directory_load(tmp_path: Path):
    one = tmp_path / "mine.py"
    one.write_text("from features.ecommerce import UV_1M\nFEATURES = [UV_1M]\n")
    assert load_features(load_settings(home=tmp_path, feature_repo=one)).names == ("uv_1m",)
    pkg = tmp_path / "repo"
    pkg.mkdir()
    (pkg / "clicks.py").write_text("from features.ecommerce import CATEGORY_CLICKS_1H as CLICKS\n")
    (pkg / "__init__.py").write_text(
        "from features.events import EventAttribute\nfrom .clicks import CLICKS\n"
        "FEATURES = (CLICKS,)\nEVENT_ATTRIBUTES = (EventAttribute('channel'),)\n"
    )
    repo = load_features(load_settings(home=tmp_path, feature_repo=pkg))
    assert repo.names == ("category_clicks_1h",) and repo.event_fields[-1] == "channel"
    # a change is read again
    one.write_text("from features.ecommerce import UV_1M, LAST_EVENT_TIME\nFEATURES = [UV_1M, LAST_EVENT_TIME]\n")
    assert load_features(load_settings(home=tmp_path, feature_repo=one)).names == ("uv_1m", "last_event_time")


@pytest.mark.parametrize(
    "text, message",
    [
        ("X = 1\n", "defines no FEATURES"),
        ("FEATURES = 'uv_1m'\n", "FEATURES is a str, not a sequence of Feature"),
        ("FEATURES = [1]\n", "FEATURES[0] is a int, not a Feature"),
        ("import nothing_of_that_name\n", "failed to import (line 1 of"),
        ("FEATURES = []\nEVENT_ATTRIBUTES = ['channel']\n", "EVENT_ATTRIBUTES[0] is a str"),
    ],
)
def test_a_repository_that_cannot_be_read(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.py"
    path.write_text(text)
    with pytest.raises(PlatformError) as e:
        load_features(load_settings(home=tmp_path, feature_repo=path))
    assert message in e.value.what and str(path) in e.value.what


def test_a_missing_repository_names_the_setting(tmp_path: Path):
    with pytest.raises(PlatformError, match="LAMBDA_FEATURES_FEATURE_REPO points at .*does not exist"):
        load_features(load_settings(home=tmp_path, feature_repo=tmp_path / "nowhere.py"))


def test_a_bad_repository_lists_every_problem_through_the_loader(tmp_path: Path):
    path = tmp_path / "bad.py"
    path.write_text(
        "import dataclasses\nfrom features.ecommerce import UV_1M\n"
        "FEATURES = [UV_1M, UV_1M, dataclasses.replace(UV_1M, name='dq_results')]\n"
    )
    with pytest.raises(PlatformError) as e:
        load_features(load_settings(home=tmp_path, feature_repo=path))
    assert "2 problem(s)" in e.value.what
    assert "uv_1m.name: defined twice" in e.value.what and "dq_results.name: 'dq_results' is reserved" in e.value.what


def test_names():
    assert "uv_1m.name: defined twice" in _one(ecommerce.UV_1M, ecommerce.UV_1M)
    assert "is reserved by the platform" in _one(replace(ecommerce.UV_1M, name="reconciled_days"))
    assert "ends in '_batch'" in _one(replace(ecommerce.UV_1M, name="uv_batch"))
    assert "not a lower-case identifier" in _one(replace(ecommerce.UV_1M, name="Uv-1m"))


def test_unknown_columns():
    found = _problems(replace(CLICKS, keys=("user_id", "categoryid")))
    assert found[0].startswith("category_clicks_1h.keys: 'categoryid' is not an event column (known: brand, ")
    lastn = replace(ecommerce.LAST_SEARCHES, aggregation=LastN(value="queries", n=10, column="queries"))
    assert _one(lastn).startswith("last_searches.aggregation.value: 'queries' is not an event column")
    assert "order_key: 'when' is not one of its columns" in _one(replace(CLICKS, order_key=("user_id", "when")))
    extra = replace(CLICKS, columns=(*CLICKS.columns, bigint("views")))
    assert "columns: 'views' is neither a key, a window bound nor a measure" in _one(extra)
    # an extra attribute is an event column like any other
    channel = EventAttribute("channel")
    by_channel = replace(CLICKS, keys=("user_id", "channel"), order_key=("user_id", "window_start", "channel"))
    assert _problems(by_channel, attributes=[channel]) == []
    assert "'channel' is not an event column" in _one(by_channel)


def test_hop_size_must_be_a_multiple_of_its_slide():
    agg = WindowAggregate(Hop(size_s=3600, slide_s=700), CLICKS.aggregation.measures)  # type: ignore[union-attr]
    found = _one(replace(CLICKS, aggregation=agg))
    assert found.startswith(
        "category_clicks_1h.aggregation.window: hop size_s 3600 is not a multiple of its slide_s 700"
    )


def test_aggregations_the_stream_cannot_run():
    rolling = replace(CLICKS, aggregation=RollingTopN("brand", 3, 30))
    assert "aggregation: the stream layer cannot run RollingTopN" in _problems(rolling)[0]
    assert "a batch-only feature is a RollingTopN or RollingStats" in _one(replace(CLICKS, layer="batch"))
    ranked = WindowAggregate(Session(300), SESSIONS.aggregation.measures, top_n=TopN(3, ("events DESC",)))  # type: ignore[union-attr]
    sessions = replace(SESSIONS, aggregation=ranked, columns=(*SESSIONS.columns, bigint("rank")))
    assert "aggregation.top_n: the stream ranks only Tumble windows, not a Session" in _one(sessions)
    no_start = WindowAggregate(Session(300), SESSIONS.aggregation.measures[1:])  # type: ignore[union-attr]
    found = _problems(replace(SESSIONS, aggregation=no_start, columns=SESSIONS.columns[:1] + SESSIONS.columns[2:]))
    assert any("a Session needs a min_time measure" in p for p in found), found
    bad_fn = WindowAggregate(Session(300), (Measure("events", "mean"),))  # type: ignore[arg-type]
    assert any(".fn: 'mean' is not one of count, " in p for p in _problems(replace(SESSIONS, aggregation=bad_fn)))


def test_online_columns_must_exist_and_be_per_user():
    assert _one(replace(ecommerce.CART_AMOUNT, online_column="amount")).startswith(
        "cart_amount.online_column: 'amount' is not one of its columns (user_id, cart_amount, updated_at)"
    )
    assert "only a per-user value" in _one(replace(ecommerce.UV_1M, online_column="uv"))


def test_event_attributes():
    found = _problems(attributes=[EventAttribute("brand"), EventAttribute("ts"), EventAttribute("x", type="JSON")])
    assert [p.split(":")[0] for p in found] == [
        "EVENT_ATTRIBUTES 'brand'.name",
        "EVENT_ATTRIBUTES 'ts'.name",
        "EVENT_ATTRIBUTES 'x'.type",
    ]


def _measure(*measures: Measure, window=None) -> list[str]:
    agg = WindowAggregate(window or Hop(3600, 300), measures)
    return _problems(replace(CLICKS, aggregation=agg), attributes=[EventAttribute("qty", "BIGINT")])


def test_each_new_measure_is_checked_at_declaration():
    """A wrong attribute type, a missing attribute, a missing k and a measure a window does not
    allow: each an error naming the feature and the measure's field."""
    assert _measure(*(Measure(fn, fn, "price") for fn in ("sum", "avg", "min", "max", "stddev", "variance"))) == []
    assert _measure(*(Measure(fn, fn, "qty") for fn in ("first", "last")), Measure("l", "last_k", "brand", k=2)) == []
    assert _measure(Measure("top", "top_k", "qty", k=3), Measure("h", "histogram", "qty", k=3)) == []
    assert _measure(Measure("avg_brand", "avg", "brand")) == [
        "category_clicks_1h.aggregation.measures 'avg_brand'.arg: avg needs a number (BIGINT or DOUBLE); "
        "'brand' is STRING"
    ]
    assert _measure(Measure("top", "top_k", "price", k=3)) == [
        "category_clicks_1h.aggregation.measures 'top'.arg: top_k counts categories (STRING or BIGINT); "
        "'price' is DOUBLE"
    ]
    (missing,) = _measure(Measure("s", "sum", "quantity"))
    assert missing.startswith(
        "category_clicks_1h.aggregation.measures 's'.arg: sum reads an event column; 'quantity' is not one (known: "
    )
    assert "qty" in missing  # the repository's attributes are known columns
    assert _measure(Measure("l", "last_k", "brand")) == [
        "category_clicks_1h.aggregation.measures 'l'.k: 0; last_k needs k of at least 1 (how many values it keeps)"
    ]
    assert _measure(Measure("m", "max", "price", k=2)) == [
        "category_clicks_1h.aggregation.measures 'm'.k: max takes no k"
    ]


def test_counted_measures_go_in_every_window_beside_any_measure():
    """top_k and histogram are one aggregate function in the stream (jvm/: CountedValues), so
    they share a window with any measure, over several columns, in a Session and with a top_n too."""
    counted = (Measure("top", "top_k", "brand", k=2), Measure("h", "histogram", "qty", k=3))
    others = (Measure("p", "max", "price"), Measure("l", "last_k", "brand", k=2))
    session = (Measure("t", "min_time"), *counted, *others)
    assert _measure(*counted, *others) == []
    assert _measure(*counted, *others, window=Tumble(600)) == []
    assert _measure(*session, window=Session(300)) == [
        "category_clicks_1h.order_key: 'window_start' is not one of its columns"  # a session has no window bounds
    ]
    ranked = WindowAggregate(Tumble(600), (Measure("n", "count"), *counted), top_n=TopN(3, ("n DESC",)))
    assert _problems(replace(CLICKS, aggregation=ranked), attributes=[EventAttribute("qty", "BIGINT")]) == []


def _rolling(*measures: DayMeasure) -> Feature:
    return replace(ecommerce.PURCHASE_STATS_30D, aggregation=RollingStats(measures, 30), online_column=measures[0].name)


def test_the_30_day_measures_are_checked_and_typed():
    """avg, variance, stddev of a number and first/last of any event column, beside the sums;
    a wrong type, an unknown column or an unknown fn names the feature and the measure."""
    f = _rolling(
        DayMeasure("n", "count"),
        DayMeasure("mean", "avg", "price", where="event_type = 'purchase'"),
        DayMeasure("var", "variance", "qty"),
        DayMeasure("sd", "stddev", "price"),
        DayMeasure("first_brand", "first", "brand"),
        DayMeasure("last_units", "last", "qty"),
    )
    qty = [EventAttribute("qty", "BIGINT")]
    assert _problems(f, attributes=qty) == []
    (f,) = read_repository_features(FeatureRepository("test", (f,), tuple(qty)))
    assert [(c.name, c.flink, c.clickhouse) for c in f.columns[2:]] == [
        ("n", "BIGINT", "Int64"),
        ("mean", "DOUBLE", "Nullable(Float64)"),
        ("var", "DOUBLE", "Nullable(Float64)"),
        ("sd", "DOUBLE", "Nullable(Float64)"),
        ("first_brand", "STRING", "Nullable(String)"),
        ("last_units", "BIGINT", "Nullable(Int64)"),
    ]
    who = "purchase_stats_30d.aggregation.measures"
    assert _one(_rolling(DayMeasure("sd", "stddev", "brand"))) == (
        f"{who} 'sd'.arg: stddev needs a number (BIGINT or DOUBLE); 'brand' is STRING"
    )
    assert _one(_rolling(DayMeasure("f", "first", "colour"))).startswith(
        f"{who} 'f'.arg: first reads an event column; 'colour' is not one (known: "
    )
    assert _one(_rolling(DayMeasure("k", "top_k", "brand"))).startswith(  # type: ignore[arg-type]
        f"{who} 'k': fn 'top_k' is not one of count, sum, "
    )


def test_columns_follow_from_the_definition():
    """Keys with the types of their event columns (not null when the filter requires it), the
    window, then each measure's documented type; `columns=` overrides."""
    agg = WindowAggregate(
        Tumble(60),
        (
            Measure("n", "count"),
            Measure("spend", "sum", "price"),
            Measure("units", "sum", "qty"),
            Measure("mean", "avg", "qty"),
            Measure("last", "last", "brand"),
            Measure("top", "top_k", "brand", k=2),
            Measure("hist", "histogram", "brand", k=2),
        ),
    )
    f = Feature(
        name="f",
        description="",
        keys=("user_id", "item_id", "category_id"),
        aggregation=agg,
        source_filter="item_id IS NOT NULL AND event_type = 'click'",
        order_key=("user_id",),
    )
    repo = FeatureRepository("test", (f,), (EventAttribute("qty", "BIGINT"),))
    (f,) = read_repository_features(repo)
    assert [(c.name, c.flink, c.clickhouse) for c in f.columns] == [
        ("user_id", "BIGINT", "Int64"),
        ("window_start", "TIMESTAMP_LTZ(3)", "DateTime64(3, 'UTC')"),
        ("window_end", "TIMESTAMP_LTZ(3)", "DateTime64(3, 'UTC')"),
        ("item_id", "BIGINT", "Int64"),
        ("category_id", "BIGINT", "Nullable(Int64)"),
        ("n", "BIGINT", "Int64"),
        ("spend", "DECIMAL(38, 6)", "Nullable(Decimal(38, 6))"),
        ("units", "BIGINT", "Nullable(Int64)"),
        ("mean", "DOUBLE", "Nullable(Float64)"),
        ("last", "STRING", "Nullable(String)"),
        ("top", "ARRAY<STRING>", "Array(String)"),
        ("hist", "MAP<STRING, BIGINT>", "Map(String, Int64)"),
    ]
    # a changed copy derives its columns again; given columns stay
    assert replace(f, keys=("user_id",)).columns[3].name == "n"
    given = replace(f, columns=(bigint("user_id"), bigint("n")))
    assert [c.name for c in replace(given, keys=("user_id",)).columns] == ["user_id", "n"]


def read_repository_features(repo: FeatureRepository) -> tuple[Feature, ...]:
    attributes = {a.name: a.column for a in repo.event_attributes}
    return tuple(resolved(f, attributes) for f in repo.features)
