"""Shared fixtures: isolated settings per test, on free local ports."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from common.clickhouse import close_clients
from common.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
TAOBAO = REPO.parent / "shared" / "datasets" / "taobao_user_behavior_sample.csv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def settings(tmp_path: Path):
    """Embedded defaults under a temp home, on ports no other test uses."""
    yield load_settings(
        home=tmp_path / "home",
        redis={"local_port": free_port()},
        kafka={"local_port": free_port()},
        stream={"checkpoint_interval_ms": 2000},
    )
    close_clients()
