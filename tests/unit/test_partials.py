"""Daily partials: compiled from the definitions, and stale once their day's archive changes."""

from __future__ import annotations

from datetime import date

import orjson

from batch.partials import STAMP, is_fresh
from batch.sql import merge_sql, partial_sql, spark_sql, spread_sql
from common.archive import fingerprint
from common.lake import partial_dir
from features.ecommerce import PURCHASE_STATS_30D, TOP_BRANDS_30D
from tests.support.archive import at, write_archive

D = date(2026, 3, 31)


def test_partials_and_merge_are_compiled_from_the_definitions():
    for m in PURCHASE_STATS_30D.aggregation.measures:  # type: ignore[union-attr]
        assert m.name in partial_sql(PURCHASE_STATS_30D) and m.name in merge_sql(PURCHASE_STATS_30D)
    # distinct counts travel as sets and are united, never summed
    assert "collect_set(CASE WHEN event_type = 'purchase' THEN item_id END) AS distinct_items" in partial_sql(
        PURCHASE_STATS_30D
    )
    assert "size(array_distinct(flatten(collect_list(distinct_items))))" in merge_sql(PURCHASE_STATS_30D)
    assert "SUM(purchases) AS purchases FROM partials" in merge_sql(TOP_BRANDS_30D)
    assert TOP_BRANDS_30D.source_filter in partial_sql(TOP_BRANDS_30D)  # type: ignore[operator]
    assert "FROM events" in spark_sql(TOP_BRANDS_30D, "x") and "partials" not in spark_sql(TOP_BRANDS_30D, "x")
    # a range of as-of days in one query: partials per day, merged per as_of
    assert "GROUP BY dt, user_id" in partial_sql(PURCHASE_STATS_30D)
    assert "GROUP BY as_of, user_id" in merge_sql(PURCHASE_STATS_30D)
    assert "PARTITION BY as_of, user_id ORDER BY purchases DESC" in merge_sql(TOP_BRANDS_30D)
    assert "explode(sequence(0, 29))" in spread_sql("daily", "dt", 30, "2026-03-01", "2026-03-31")


def test_a_partial_goes_stale_when_its_archive_changes(tmp_path):
    from common.settings import load_settings

    settings = load_settings(home=tmp_path)
    write_archive(settings, [{"user_id": 1, "event_type": "click", "event_time": at(D)}])
    out = partial_dir(settings, TOP_BRANDS_30D.name, D)
    out.mkdir(parents=True)
    assert not is_fresh(settings, TOP_BRANDS_30D, D)  # never computed
    (out / STAMP).write_bytes(orjson.dumps({"archive": fingerprint(settings, D)}))
    assert is_fresh(settings, TOP_BRANDS_30D, D)
    write_archive(settings, [{"user_id": 2, "event_type": "click", "event_time": at(D, 13)}])  # a new hour file
    assert not is_fresh(settings, TOP_BRANDS_30D, D)
