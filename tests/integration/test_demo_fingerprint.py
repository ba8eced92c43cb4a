"""The demo's checksum of the serving views, which must count rows whose keys are NULL."""

from __future__ import annotations

from common.clickhouse import get_client
from orchestration.demo import serving_fingerprints
from warehouse.schema import create_tables


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
