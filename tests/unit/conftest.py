"""Unit tests start no process, so neither a server nor a JVM: a test that tries fails here, and
belongs in tests/integration or tests/e2e."""

from __future__ import annotations

import subprocess

import pytest


@pytest.fixture(autouse=True)
def _no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self, args, *rest, **kwargs):
        raise AssertionError(f"a unit test started a process ({args!r}): move it to tests/integration or tests/e2e")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)


@pytest.fixture(scope="session")
def shared_kafka() -> None:
    """Unit tests reach no broker: the settings fixtures get none."""
    return None
