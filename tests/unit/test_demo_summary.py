"""The demo's printed summary: a failed check of the served values says why it fails in a demo."""

from __future__ import annotations

from types import SimpleNamespace

from cli import demo
from cli.console import console

CHECKS = [("archive", "completeness_hours", True, "WARN")]


def _printed(checks) -> str:
    run = SimpleNamespace(success=True, run_id="0123456789", materialized={}, checks=checks)
    with console.capture() as out:
        demo._print_run("daily_batch", run)
    return " ".join(out.get().split())


def test_the_serving_check_that_warns_is_explained():
    failed = ("serving_consistency", "served_equals_offline", False, "WARN")
    assert "the demo sends the API no requests" in _printed([*CHECKS, failed])
    assert "no requests" not in _printed([*CHECKS, failed[:2] + (True, "WARN")])
