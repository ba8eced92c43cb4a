"""Shared fixtures: isolated settings per test, on free local ports, on one Kafka broker per
session (tests/README.md: which tests run a broker of their own, and why)."""

from __future__ import annotations

import fcntl
import itertools
import os
import pickle
import selectors
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from common.clickhouse import close_clients
from common.ports import free_port
from common.services import LocalService, kafka_service
from common.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
KINDS = ("unit", "integration", "e2e")  # the folders under tests/, and the marker each gives its tests


def pytest_configure(config: pytest.Config) -> None:
    # Every JVM the tests start (Spark, Flink, in this process or a CLI child) runs small data,
    # where starting fast matters more than hot loops: C1 only and the serial collector take a
    # third off a batch command (16 -> 11 s) and a fifth off the drills' stream run. Set here,
    # not on import: the benchmarks import helpers from this module and measure the JVMs' defaults.
    os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")


MONITORING_PORTS = ("prometheus", "stream", "loader", "olap_loader", "clickhouse", "exporter", "kafka", "flink")
# Every port setting of the platform: a test draws each of them, so that none depends on the
# defaults being free (the demo leaves its services running on them).
PORT_SETTINGS = (
    ("kafka", "local_port"),
    ("kafka", "local_controller_port"),
    ("redis", "local_port"),
    ("clickhouse", "local_port"),
    ("catalog", "local_port"),
    ("catalog", "relay_port"),
    ("stream", "rest_port"),
    ("orchestration", "ui_port"),
    ("serving", "port"),
    *(("monitoring", f"{name}_port") for name in MONITORING_PORTS),
)


def free_ports() -> dict[str, dict[str, int]]:
    """A free port for every port setting, as nested settings (section -> field -> port)."""
    out: dict[str, dict[str, int]] = {}
    for section, field in PORT_SETTINGS:
        out.setdefault(section, {})[field] = free_port()
    return out


def port_env(ports: dict[str, dict[str, int]]) -> dict[str, str]:
    """The same as environment variables."""
    return {
        f"LAMBDA_FEATURES_{section.upper()}__{field.upper()}": str(port)
        for section, fields in ports.items()
        for field, port in fields.items()
    }


def monitoring_ports() -> dict[str, int]:
    """Free ports for every metrics endpoint and the local Prometheus (settings.monitoring)."""
    return free_ports()["monitoring"]


def isolated_settings(home: Path, **overrides) -> Settings:
    """Embedded defaults under home, on ports no other test uses; `overrides` as load_settings takes them."""
    merged: dict = free_ports()
    for name, value in overrides.items():
        merged[name] = merged.get(name, {}) | value if isinstance(value, dict) else value
    return load_settings(home=home, **merged)


@pytest.fixture(scope="session")
def shared_kafka(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The address of one broker for the session's tests (each pytest-xdist worker has its own):
    a JVM broker takes seconds to start, so the tests that neither stop nor kill it share one,
    each on topics and consumer groups of its own (kafka_of)."""
    s = isolated_settings(tmp_path_factory.mktemp("shared-kafka"))
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
    """The kafka and catalog settings of a test: a local broker of its own on the ports drawn
    for it when it is marked own_broker, else the session's broker."""
    if request.node.get_closest_marker("own_broker"):
        return {}, {}
    bootstrap = request.getfixturevalue("shared_kafka")
    if bootstrap is None:  # unit tests: no broker at all
        return {}, {}
    name = f"t{next(_tests)}"
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
    yield isolated_settings(tmp_path / "home", kafka=kafka, catalog=catalog, stream={"checkpoint_interval_ms": 2000})
    close_clients()


@pytest.fixture
def platform_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Settings:
    """Isolated settings set as this test's environment, for code that reads the environment
    itself (Dagster resources, CLI subprocesses)."""
    kafka, catalog = kafka_of(request)
    env = {
        "LAMBDA_FEATURES_HOME": str(tmp_path / "home"),
        "LAMBDA_FEATURES_STREAM__CHECKPOINT_INTERVAL_MS": "2000",
        "DAGSTER_HOME": str(tmp_path / "home" / "dagster"),
        **port_env(free_ports()),
        **as_env("kafka", kafka),
        **as_env("catalog", catalog),
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


def default_ports() -> set[int]:
    """The ports of the embedded defaults (what `make demo` and `services start` listen on)."""
    defaults = Settings.model_construct()
    return {type(getattr(defaults, section)).model_fields[field].default for section, field in PORT_SETTINGS}


@pytest.fixture(autouse=True, scope="session")
def _default_ports_taken():
    """Hold every default port for the whole session, as the demo's services would, so that a test
    that forgot to draw its own ports fails here on every run. A port already taken (the demo's
    services are up) is the same condition and is left alone. Connections are closed at once."""
    held = []
    for port in sorted(default_ports()):
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen(16)
        sock.setblocking(False)
        held.append(sock)
    stop = threading.Event()

    def refuse() -> None:
        sel = selectors.DefaultSelector()
        for sock in held:
            sel.register(sock, selectors.EVENT_READ)
        while not stop.is_set():
            for key, _ in sel.select(timeout=0.2):
                try:
                    conn, _ = key.fileobj.accept()
                    conn.close()
                except OSError:
                    pass

    thread = threading.Thread(target=refuse, name="default-ports", daemon=True)
    thread.start()
    yield {s.getsockname()[1] for s in held}
    stop.set()
    thread.join()
    for sock in held:
        sock.close()


@pytest.fixture(autouse=True, scope="session")
def _no_service_left_in_session(tmp_path_factory: pytest.TempPathFactory):
    yield
    close_clients()
    stop_local_services(tmp_path_factory.getbasetemp())


def isolated(home: Path, **env_extra: str) -> tuple[Settings, dict[str, str]]:
    """Settings for `home` on free ports, and the same as the environment of a CLI process."""
    env = {"LAMBDA_FEATURES_HOME": str(home), **port_env(free_ports()), **env_extra}
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
    ports: dict[str, dict[str, int]] = {}
    for section, field in PORT_SETTINGS:
        ports.setdefault(section, {})[field] = getattr(getattr(settings, section), field)
    return {
        "LAMBDA_FEATURES_HOME": str(settings.home),
        **port_env(ports),
        **as_env("kafka", settings.kafka.model_dump(include=SHARED_KAFKA, exclude_none=True)),
        "LAMBDA_FEATURES_CATALOG__TOPIC": settings.catalog.topic,
        **({"LAMBDA_FEATURES_FEATURE_REPO": str(settings.feature_repo)} if settings.feature_repo else {}),
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
    several files compare with (tests/support/stream_drill.py). Made once per `make test`: under
    pytest-xdist the first worker to need it makes it and saves it beside the workers' temp
    folders, and the others wait for it and read it."""
    from tests.support.stream_drill import uninterrupted_run

    root = tmp_path_factory.getbasetemp()
    root = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root
    saved = root / "uninterrupted.pickle"
    with (root / "uninterrupted.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not saved.exists():
            sinks = uninterrupted_run(tmp_path_factory.mktemp("uninterrupted"), **shared_env(shared_kafka))
            saved.write_bytes(pickle.dumps(sinks))
    return pickle.loads(saved.read_bytes())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers follow the folder: `-m unit`, `-m integration`, `-m e2e`; both of the last two are `slow`."""
    for item in items:
        kind = next((k for k in KINDS if k in item.path.relative_to(REPO / "tests").parts[:1]), None)
        if kind is None:
            raise pytest.UsageError(f"{item.nodeid}: a test belongs in tests/unit, tests/integration or tests/e2e")
        item.add_marker(kind)
        if kind != "unit":
            item.add_marker("slow")
