"""The README's main command, `lambda-features demo`, end to end through the real CLI and Dagster;
and the pieces it relies on: the generated catalogue and a checksum that counts NULLs."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from common.clickhouse import get_client
from common.repository import load_features
from features.generator import GeneratorConfig, generate, generate_catalogue
from orchestration.demo import serving_fingerprints
from tests.conftest import cli, isolated
from tiering.manifest import TABLE
from warehouse.schema import create_tables


def test_the_generated_catalogue_leaves_out_the_share_asked_and_changes_some_items():
    cfg = GeneratorConfig(seed=7, events_per_second=1.0)
    uses = Counter(e["item_id"] for e in generate(cfg, 5000) if e["item_id"] is not None)
    cat = generate_catalogue(cfg, dict(uses), unknown_share=0.01, changed_share=0.1)
    known = {r["item_id"] for r in cat.first}
    assert known | cat.unknown == set(uses) and not known & cat.unknown
    assert 0 < cat.unknown_events <= 0.01 * cat.item_events == 0.01 * sum(uses.values())
    assert cat.unknown_events == sum(uses[i] for i in cat.unknown)
    first = {r["item_id"]: r for r in cat.first}
    assert {r["item_id"] for r in cat.second} <= known and len(cat.second) == int(len(known) * 0.1)
    for r in cat.second:  # each changed item has exactly one of a new brand or a new price
        changed = {k for k in r if r[k] != first[r["item_id"]][k]} - {"title"}
        assert changed in ({"brand"}, {"price"}), (r, first[r["item_id"]])
    # the first version describes each item as the events do
    events = {e["item_id"]: e for e in generate(cfg, 5000) if e["item_id"] is not None}
    for item, row in first.items():
        assert (row["category_id"], row["brand"], row["price"]) == (
            events[item]["category_id"],
            events[item]["brand"],
            events[item]["price"],
        )


def test_serving_fingerprints_count_rows_whose_keys_are_null(settings):
    """cityHash64 of a NULL is NULL and `sum` skips it: a view whose key is NULL in every row (the
    catalogue features without a catalogue) once crashed the demo. Each row counts now, and a
    NULL that becomes a value changes the checksum."""
    create_tables(settings)
    ch = get_client(settings)
    db = settings.clickhouse.database
    t = "toDateTime64('2026-01-01 00:00:00', 3, 'UTC')"
    hour = f"{t} + 3600"
    ch.command(
        f"INSERT INTO {db}.brand_clicks_1h_stream VALUES ({t}, {hour}, NULL, 3), ({hour}, {hour} + 3600, NULL, 4)"
    )
    before = serving_fingerprints(settings)
    assert before["brand_clicks_1h"][0] == 2 and before["brand_clicks_1h"][1] != 0
    ch.command(f"INSERT INTO {db}.brand_clicks_1h_stream VALUES ({t}, {t} + 3600, '', 3)")
    ch.command(
        f"ALTER TABLE {db}.brand_clicks_1h_stream DELETE WHERE catalog_brand IS NULL AND clicks = 3",
        settings={"mutations_sync": 1},
    )
    after = serving_fingerprints(settings)
    assert after["brand_clicks_1h"][0] == 2 and after["brand_clicks_1h"][1] != before["brand_clicks_1h"][1]
    assert {k: v for k, v in after.items() if k != "brand_clicks_1h"} == {
        k: v for k, v in before.items() if k != "brand_clicks_1h"
    }


@pytest.mark.slow
def test_the_demo_runs_end_to_end_from_a_fresh_home(tmp_path):
    s, env = isolated(tmp_path / "home", DAGSTER_HOME=str(tmp_path / "home" / "dagster"))
    proc = cli(["demo", "--events", "20000", "--days", "3"], env)
    out = proc.communicate(timeout=1500)[0].decode()
    assert proc.returncode == 0, out[-6000:]
    text = " ".join(out.split())
    assert "items with brand, category and price" in text and "0.50% of the events with an item" in text, text
    assert "serving views before and after tiering" in text and "DIFFERENT" not in text, text
    assert "the demo leaves the local services running" in text, text

    ch = get_client(s)
    db = s.clickhouse.database
    features = load_features(s)
    for f in features.stream:
        assert ch.query(f"SELECT count() FROM {db}.{f.name}_stream").result_rows[0][0] > 0, f.name
    for f in (f for f in features.stream if f.enriched):
        keys = [c for c in f.keys if c.startswith("catalog_")]
        assert keys, f.name
        known = ch.query(f"SELECT countIf({' AND '.join(f'{k} IS NOT NULL' for k in keys)}) FROM {db}.{f.name}")
        assert known.result_rows[0][0] > 0, f.name
    # tiering moved every day but the last, and the serving views answered the same (checked above)
    cold = ch.query(f"SELECT DISTINCT day FROM {db}.{TABLE} FINAL WHERE state = 'cold' ORDER BY day").result_rows
    assert [d for (d,) in cold] == [date(2026, 1, 1), date(2026, 1, 2)], text
