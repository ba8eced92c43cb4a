"""The daily tiering job through the Dagster API: it moves the due days, records what it
moved, its check finds hot plus cold rows equal to the rows before, and answers do not change."""

from datetime import timedelta

from orchestration.instance import materialize_days
from tests.support.tiering_data import DUE_DAYS, TODAY, answers, seed


def test_daily_tiering_moves_the_due_days_and_its_check_passes(platform_env, monkeypatch):
    monkeypatch.setenv("LAMBDA_FEATURES_ORCHESTRATION__START_DATE", "2024-01-01")
    from common.settings import load_settings

    s = load_settings()
    seed(s)
    before = answers(s)
    run = materialize_days(s, TODAY - timedelta(days=1), TODAY - timedelta(days=1), "daily_tiering")
    assert run.success, run.error
    meta = run.materialized["tiered_features"]
    assert meta["as of"] == str(TODAY)
    assert meta["partitions moved"] > 0 and meta["rows moved"] > 0 and meta["objects written"] > 0
    assert str(max(DUE_DAYS)) in meta["moves"] and str(TODAY - timedelta(days=1)) not in meta["moves"]
    assert ("tiered_features", "tiered_rows_match", True, "ERROR") in run.checks
    assert answers(s) == before
