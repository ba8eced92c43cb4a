"""Shared fixtures: isolated settings per test, on free local ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from common.clickhouse import close_clients
from common.ports import free_port
from common.services import LocalService
from common.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
# Every JVM the tests start (Spark, Flink, in this process or a CLI child) runs small data, where
# starting fast matters more than hot loops: C1 only and the serial collector take a third off
# a batch command (16 -> 11 s) and a fifth off the drills' stream run.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")


MONITORING_PORTS = ("prometheus", "stream", "loader", "olap_loader", "clickhouse", "exporter")


def monitoring_ports() -> dict[str, int]:
    """Free ports for every metrics endpoint and the local Prometheus (settings.monitoring)."""
    return {f"{name}_port": free_port() for name in MONITORING_PORTS}


def monitoring_env() -> dict[str, str]:
    """The same as environment."""
    return {f"LAMBDA_FEATURES_MONITORING__{k.upper()}": str(v) for k, v in monitoring_ports().items()}


@pytest.fixture
def settings(tmp_path: Path):
    """Embedded defaults under a temp home, on ports no other test uses."""
    yield load_settings(
        home=tmp_path / "home",
        redis={"local_port": free_port()},
        kafka={"local_port": free_port()},
        clickhouse={"local_port": free_port()},
        catalog={"local_port": free_port()},
        stream={"checkpoint_interval_ms": 2000},
        monitoring=monitoring_ports(),
    )
    close_clients()


@pytest.fixture
def platform_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Isolated settings set as this test's environment, for code that reads the environment
    itself (Dagster resources, CLI subprocesses)."""
    env = {
        "LAMBDA_FEATURES_HOME": str(tmp_path / "home"),
        "LAMBDA_FEATURES_KAFKA__LOCAL_PORT": str(free_port()),
        "LAMBDA_FEATURES_REDIS__LOCAL_PORT": str(free_port()),
        "LAMBDA_FEATURES_STREAM__REST_PORT": str(free_port()),
        "LAMBDA_FEATURES_CLICKHOUSE__LOCAL_PORT": str(free_port()),
        "LAMBDA_FEATURES_CATALOG__LOCAL_PORT": str(free_port()),
        "LAMBDA_FEATURES_STREAM__CHECKPOINT_INTERVAL_MS": "2000",
        "DAGSTER_HOME": str(tmp_path / "home" / "dagster"),
        **monitoring_env(),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield load_settings()
    close_clients()


def stop_local_services(root: Path) -> None:
    """Stop every local service whose pidfile lies under root: the ClickHouse service, and
    the Redis that commands start on demand, outlive the jobs that start them."""
    for name in ("clickhouse", "redis", "kafka", "exporter", "prometheus", "mariadb", "catalog-relay"):
        for pidfile in root.glob(f"**/run/{name}.pid"):
            stop = signal.SIGINT if name == "kafka" else signal.SIGTERM
            LocalService(name, [], 0, pidfile.parent, stop_signal=stop, stop_timeout_s=40).stop()


@pytest.fixture(autouse=True)
def _no_service_left(tmp_path: Path):
    yield
    close_clients()
    stop_local_services(tmp_path)


@pytest.fixture(autouse=True, scope="session")
def _no_service_left_in_session(tmp_path_factory: pytest.TempPathFactory):
    yield
    close_clients()
    stop_local_services(tmp_path_factory.getbasetemp())


def isolated(home: Path, **env_extra: str) -> tuple[Settings, dict[str, str]]:
    """Settings for `home` on free ports, and the same as the environment of a CLI process."""
    env = {
        "LAMBDA_FEATURES_HOME": str(home),
        "LAMBDA_FEATURES_KAFKA__LOCAL_PORT": str(free_port()),
        "LAMBDA_FEATURES_REDIS__LOCAL_PORT": str(free_port()),
        "LAMBDA_FEATURES_CLICKHOUSE__LOCAL_PORT": str(free_port()),
        "LAMBDA_FEATURES_CATALOG__LOCAL_PORT": str(free_port()),
        **monitoring_env(),
        **env_extra,
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return load_settings(), env
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v


def cli(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """`lambda-features ARGS` in its own process group, with only these platform settings."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("LAMBDA_FEATURES_")} | env
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO,
        env=full,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def env_of(settings: Settings) -> dict[str, str]:
    """The environment that gives a CLI process these settings."""
    return {
        "LAMBDA_FEATURES_HOME": str(settings.home),
        "LAMBDA_FEATURES_KAFKA__LOCAL_PORT": str(settings.kafka.local_port),
        "LAMBDA_FEATURES_REDIS__LOCAL_PORT": str(settings.redis.local_port),
        "LAMBDA_FEATURES_CLICKHOUSE__LOCAL_PORT": str(settings.clickhouse.local_port),
        "LAMBDA_FEATURES_CATALOG__LOCAL_PORT": str(settings.catalog.local_port),
        **({"LAMBDA_FEATURES_FEATURE_REPO": str(settings.feature_repo)} if settings.feature_repo else {}),
        **{
            f"LAMBDA_FEATURES_MONITORING__{name.upper()}_PORT": str(getattr(settings.monitoring, f"{name}_port"))
            for name in MONITORING_PORTS
        },
    }


def run_batch(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    """`lambda-features batch ARGS` in its own process, as users run it: Spark never shares
    a Python process with PyFlink's gateway (the two py4j bridges in one process broke
    Flink's planner once in CI). The child reaches chDB through the same local service."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("LAMBDA_FEATURES_")} | env_of(settings)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "batch", *args],
        cwd=REPO,
        env=full,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    """Every sink after an uninterrupted run over the chaos drills' events, which the drills in
    several files compare with (tests/stream_drill.py)."""
    from tests.stream_drill import uninterrupted_run

    yield from uninterrupted_run(tmp_path_factory.mktemp("uninterrupted"))
