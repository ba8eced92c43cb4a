"""The README's main command, `lambda-features demo`, end to end through the real CLI and Dagster."""

from __future__ import annotations

import re
from datetime import date

from common.clickhouse import get_client
from common.repository import load_features
from tests.conftest import cli, isolated
from tiering.manifest import TABLE


def test_the_demo_runs_end_to_end_from_a_fresh_home(tmp_path):
    s, env = isolated(tmp_path / "home", DAGSTER_HOME=str(tmp_path / "home" / "dagster"))
    proc = cli(["demo", "--events", "20000", "--days", "3"], env)
    out = proc.communicate(timeout=1500)[0].decode()
    assert proc.returncode == 0, out[-6000:]
    text = " ".join(re.sub("[│┃]", " ", out).split())  # as read, without the tables' wrapping
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
    days = {d for (d,) in cold}  # with 2025-12-31, which the generator's late events reach
    assert {date(2026, 1, 1), date(2026, 1, 2)} <= days and date(2026, 1, 3) not in days, (days, text)
