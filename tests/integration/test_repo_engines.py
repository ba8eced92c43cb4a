"""Both engines check a repository, each in a process of its own: a filter Flink SQL rejects
and an expression Spark SQL rejects are reported per feature with the engine's message (which
features keep their state across a redeploy: tests/e2e/test_repo_running.py)."""

from __future__ import annotations

from pathlib import Path

from orchestration.repo_plan import engine_problems, run_engine_checks
from tests.conftest import isolated_settings

BAD = """
from dataclasses import replace
from features.ecommerce import UV_1M, HOT_ITEMS_5M, LAST_EVENT_TIME
from features.events import EventAttribute

EVENT_ATTRIBUTES = (EventAttribute("channel"),)
FEATURES = (
    replace(UV_1M, source_filter="channel SIMILAR TO 'a%'"),  # Flink SQL has SIMILAR TO, Spark SQL has not
    replace(HOT_ITEMS_5M, source_filter="channel RLIKE '^a'"),  # Spark SQL has RLIKE, Flink SQL has not
    LAST_EVENT_TIME,
)
"""


def _settings(tmp_path: Path, name: str, text: str):
    p = tmp_path / f"{name}.py"
    p.write_text(text)
    return isolated_settings(tmp_path / "home", feature_repo=p)


def test_each_engine_rejects_with_its_own_message(tmp_path: Path):
    checks = run_engine_checks(_settings(tmp_path, "bad", BAD))
    assert set(checks["flink"]["problems"]) == {"hot_items_5m"}, checks
    assert set(checks["spark"]["problems"]) == {"uv_1m"}, checks
    problems = engine_problems(checks)
    assert problems[0].startswith("hot_items_5m: flink rejects it: ") and "RLIKE" in problems[0].upper(), problems
    assert problems[1].startswith("uv_1m: spark rejects it: "), problems
