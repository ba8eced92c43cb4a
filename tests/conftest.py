"""Shared fixtures: isolated settings per test, on free local ports, on one Kafka broker per
session (tests/BROKERS.md: which tests run a broker of their own, and why)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.clickhouse import close_clients
from common.ports import free_port
from common.services import LocalService, kafka_service
from common.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
# Every JVM the tests start (Spark, Flink, in this process or a CLI child) runs small data, where
# starting fast matters more than hot loops: C1 only and the serial collector take a third off
# a batch command (16 -> 11 s) and a fifth off the drills' stream run.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")


MONITORING_PORTS = ("prometheus", "stream", "loader", "olap_loader", "clickhouse", "exporter", "kafka")


def monitoring_ports() -> dict[str, int]:
    """Free ports for every metrics endpoint and the local Prometheus (settings.monitoring)."""
    return {f"{name}_port": free_port() for name in MONITORING_PORTS}


def monitoring_env() -> dict[str, str]:
    """The same as environment."""
    return {f"LAMBDA_FEATURES_MONITORING__{k.upper()}": str(v) for k, v in monitoring_ports().items()}


@pytest.fixture(scope="session")
def shared_kafka(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The address of one broker for the session's tests (each pytest-xdist worker has its own):
    a JVM broker takes seconds to start, so the tests that neither stop nor kill it share one,
    each on topics and consumer groups of its own (kafka_of)."""
    home = tmp_path_factory.mktemp("shared-kafka")
    s = load_settings(
        home=home,
        kafka={"local_port": free_port(), "local_controller_port": free_port()},
        monitoring={"kafka_port": free_port()},
    )
    broker = kafka_service(s)
    broker.start()
    yield f"127.0.0.1:{s.kafka.local_port}"
    broker.stop()


_tests = itertools.count()
SHARED_KAFKA = {"bootstrap", "events_topic", "features_topic_prefix", "group_id"}  # what kafka_of sets


def on_shared(bootstrap: str, name: str | None = None) -> tuple[dict[str, object], dict[str, object]]:
    """The kafka and catalog settings of a test on the session's broker: topics and consumer
    groups named for it alone (`name`, or a new one)."""
    name = name or f"t{next(_tests)}"
    kafka = {
        "bootstrap": bootstrap,
        "events_topic": f"{name}.events",
        "features_topic_prefix": f"{name}.features.",
        "group_id": f"lambda-features-{name}",
    }
    return kafka, {"topic": f"{name}.catalog.items"}


def shared_env(bootstrap: str) -> dict[str, str]:
    """The same as the environment of a CLI process (for isolated())."""
    kafka, catalog = on_shared(bootstrap)
    return as_env("kafka", kafka) | as_env("catalog", catalog)


def kafka_of(request: pytest.FixtureRequest) -> tuple[dict[str, object], dict[str, object]]:
    """The kafka and catalog settings of a test: a local broker of its own on free ports when
    it is marked own_broker, else the session's broker."""
    if request.node.get_closest_marker("own_broker"):
        return {"local_port": free_port(), "local_controller_port": free_port()}, {}
    bootstrap, name = request.getfixturevalue("shared_kafka"), f"t{next(_tests)}"
    request.addfinalizer(lambda: delete_topics(bootstrap, name + "."))
    return on_shared(bootstrap, name)


def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete a test's topics from the session's broker, so it does not gather thousands."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    for fut in admin.delete_topics(topics).values() if topics else ():
        fut.result()


def as_env(section: str, values: dict[str, object]) -> dict[str, str]:
    return {f"LAMBDA_FEATURES_{section.upper()}__{k.upper()}": str(v) for k, v in values.items()}


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest):
    """Embedded defaults under a temp home, on ports no other test uses."""
    kafka, catalog = kafka_of(request)
    yield load_settings(
        home=tmp_path / "home",
        redis={"local_port": free_port()},
        kafka=kafka,
        clickhouse={"local_port": free_port()},
        catalog={"local_port": free_port(), **catalog},
        stream={"checkpoint_interval_ms": 2000},
        monitoring=monitoring_ports(),
    )
    close_clients()


@pytest.fixture
def platform_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Settings:
    """Isolated settings set as this test's environment, for code that reads the environment
    itself (Dagster resources, CLI subprocesses)."""
    kafka, catalog = kafka_of(request)
    env = {
        "LAMBDA_FEATURES_HOME": str(tmp_path / "home"),
        **as_env("kafka", kafka),
        **as_env("catalog", catalog),
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
            LocalService(name, [], 0, pidfile.parent, stop_timeout_s=60).stop()


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
        "LAMBDA_FEATURES_KAFKA__LOCAL_CONTROLLER_PORT": str(free_port()),
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
        "LAMBDA_FEATURES_KAFKA__LOCAL_CONTROLLER_PORT": str(settings.kafka.local_controller_port),
        **as_env("kafka", settings.kafka.model_dump(include=SHARED_KAFKA, exclude_none=True)),
        "LAMBDA_FEATURES_REDIS__LOCAL_PORT": str(settings.redis.local_port),
        "LAMBDA_FEATURES_CLICKHOUSE__LOCAL_PORT": str(settings.clickhouse.local_port),
        "LAMBDA_FEATURES_CATALOG__LOCAL_PORT": str(settings.catalog.local_port),
        "LAMBDA_FEATURES_CATALOG__TOPIC": settings.catalog.topic,
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
def uninterrupted(tmp_path_factory, shared_kafka):
    """Every sink after an uninterrupted run over the chaos drills' events, which the drills in
    several files compare with (tests/stream_drill.py)."""
    from tests.stream_drill import uninterrupted_run

    yield from uninterrupted_run(tmp_path_factory.mktemp("uninterrupted"), **shared_env(shared_kafka))
