"""What `plan` says, against a registry: features added, changed, removed, the ClickHouse objects,
the stream's state, the backfill and the Dagster assets. The engines' checks are given as the
data they return (tests/integration/test_repo_engines.py runs them); apply runs in tests/e2e/test_repo_apply.py."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from common import registry
from common.errors import PlatformError
from common.repository import load_features
from common.settings import load_settings
from features.adapters import parse_jsonl, parse_rees46, parse_taobao
from features.events import EventAttribute
from features.repository import fingerprint
from orchestration.repo_plan import build_plan, dagster_keys
from streaming.staging import stage_files
from tests.support.archive import write_archive
from warehouse.tables import objects_of

REPOS = Path(__file__).resolve().parents[1] / "feature_repos"
V1, V2 = REPOS / "channels", REPOS / "channels_v2.py"
TODAY = date(2026, 3, 1)


def _checks(operators: dict[str, list[str]]) -> dict[str, dict]:
    return {"flink": {"problems": {}, "operators": operators}, "spark": {"problems": {}}}


def _register(settings, operators: dict[str, list[str]]) -> registry.Registry:
    """The registry `apply` writes for the settings' repository."""
    from streaming.deployment import definition_fingerprint

    repo = load_features(settings)
    assets, checks = dagster_keys(settings)
    reg = registry.Registry(
        features={
            f.name: registry.DeployedFeature(fingerprint(f), f.layer, *objects_of(f), f.online_column is not None, "t")
            for f in repo.features
        },
        repository=repo.source,
        stream_fingerprint=definition_fingerprint(settings),
        operators=operators,
        assets=assets,
        checks=checks,
        applied_at="t",
    )
    registry.write(settings, reg)
    return reg


def test_a_first_plan_adds_everything(tmp_path: Path):
    s = load_settings(home=tmp_path, feature_repo=V1)
    plan = build_plan(s, today=TODAY, checks=_checks({"app_clicks_10m": ["a"]}))
    assert plan.changes and plan.added == list(load_features(s).names) and not plan.changed + plan.removed
    assert "table features.channel_clicks_30m_tiles_stream" in plan.create
    assert "view features.channel_clicks_30m_stream" in plan.create and "view features.spend_7d" not in plan.create
    assert "table features.spend_7d" in plan.create and plan.redeploy
    assert "lake/top_channels_7d" in plan.assets_added and "clickhouse/fav_amount:consistency" in plan.checks_added
    assert plan.backfill_range == (TODAY - timedelta(days=30), TODAY - timedelta(days=1)) and plan.backfill_days == []


def test_nothing_to_do_once_applied(tmp_path: Path):
    s = load_settings(home=tmp_path, feature_repo=V1)
    _register(s, {"app_clicks_10m": ["a"]})
    plan = build_plan(s, today=TODAY, checks=_checks({"app_clicks_10m": ["a"]}))
    assert not plan.changes and plan.lines()[-1] == "no changes: the platform runs this repository."


def test_added_changed_and_removed(tmp_path: Path):
    before = {
        "app_clicks_10m": ["a1"],
        "long_sessions": ["s1", "s2"],
        "fav_amount": ["f1"],
        "top_categories_10m": ["t"],
    }
    _register(load_settings(home=tmp_path, feature_repo=V1), before)
    s = load_settings(home=tmp_path, feature_repo=V2, batch={"history_days": 7})
    write_archive(s, [{"user_id": 1, "event_type": "click", "event_time": 1_772_280_000_000}])  # 2026-02-28
    # long_sessions' vertices kept their operator IDs, fav_amount's did not
    after = {"app_clicks_10m": ["a2"], "long_sessions": ["s1", "s2"], "fav_amount": ["f2"], "web_clicks_1h": ["w"]}
    plan = build_plan(s, today=TODAY, checks=_checks(after))
    assert (plan.added, plan.changed, plan.removed) == (["web_clicks_1h"], ["app_clicks_10m"], ["top_categories_10m"])
    assert plan.drop == [
        "table features.app_clicks_10m_stream",
        "table features.app_clicks_10m_batch",
        "view features.app_clicks_10m_stream_cold",
        "view features.app_clicks_10m_batch_cold",
    ]
    assert "table features.top_categories_10m_stream" in plan.keep and "view features.top_categories_10m" in plan.keep
    assert "long_sessions" in plan.keeps_state and "fav_amount" in plan.starts_empty
    assert plan.drops_state == ["top_categories_10m"] and plan.new_state == ["web_clicks_1h", "app_clicks_10m"]
    assert plan.backfill == ["web_clicks_1h", "app_clicks_10m"] and plan.backfill_days == [date(2026, 2, 28)]
    assert "lake/top_categories_10m" in plan.assets_removed and plan.assets_added == [
        "clickhouse/web_clicks_1h",
        "lake/web_clicks_1h",
    ]
    text = "\n".join(plan.lines())
    assert "- remove top_categories_10m" in text and "~ recompute app_clicks_10m" in text
    assert "backfill: 2026-02-22..2026-02-28 (1 archived day(s)) for web_clicks_1h, app_clicks_10m" in text
    dropping = build_plan(s, drop_removed=True, today=TODAY, checks=_checks(after))
    assert "table features.top_categories_10m_batch" in dropping.drop and not dropping.keep


def test_an_engine_rejection_stops_the_plan(tmp_path: Path):
    s = load_settings(home=tmp_path, feature_repo=V1)
    checks = _checks({})
    checks["spark"]["problems"] = {"fav_amount": "[UNRESOLVED_COLUMN] ..."}
    with pytest.raises(PlatformError, match="fav_amount: spark rejects it: .UNRESOLVED_COLUMN"):
        build_plan(s, today=TODAY, checks=checks)


def test_attributes_where_each_format_has_them(tmp_path: Path):
    attrs = (
        EventAttribute("channel", json_field="chan"),
        EventAttribute("session", rees46_column="user_session"),
        EventAttribute("member", "BOOLEAN"),
        EventAttribute("score", "DOUBLE"),
    )
    e = parse_jsonl('{"user_id": 1, "event_time": 5, "chan": "app", "member": true, "score": 2}', "j:1", attrs)
    assert (e["channel"], e["session"], e["member"], e["score"]) == ("app", None, True, 2.0)
    line = "2019-10-01 00:00:00 UTC,view,1,2,code,Brand,1.5,7,abc-123"
    assert parse_rees46(line, "r:1", attrs)["session"] == "abc-123"
    assert parse_taobao("1,2,3,pv,4", "t:1", attrs)["channel"] is None
    with pytest.raises(ValueError, match="member is not a boolean"):
        parse_jsonl('{"user_id": 1, "event_time": 5, "member": "yes"}', "j:1", attrs)
    src = tmp_path / "in.jsonl"
    src.write_text('{"user_id": 1, "event_type": "click", "event_time": 5, "chan": "web", "member": false}\n')
    staged = stage_files("jsonl", [src], tmp_path / "staged.csv", tmp_path / "dl", attrs)
    assert staged.path.read_text().strip().endswith(",web,\\N,false,\\N")


def test_a_changed_feature_whose_operators_keep_their_ids_redeploys_with_no_state(tmp_path: Path):
    """Measured (docs/features.md): a changed filter leaves the job graph's shape, so Flink would
    restore the feature's old state into its new definition; the plan starts the job empty instead."""
    ops = {"app_clicks_10m": ["a"], "long_sessions": ["s"]}
    _register(load_settings(home=tmp_path, feature_repo=V1), ops)
    s = load_settings(home=tmp_path, feature_repo=V2)
    plan = build_plan(s, today=TODAY, checks=_checks(ops | {"web_clicks_1h": ["w"]}))
    assert plan.fresh and plan.stale == ["app_clicks_10m"] and plan.keeps_state == []
    assert "long_sessions" in plan.starts_empty
    assert any("redeploy with no state" in line for line in plan.lines())
