"""Local servers the platform starts for its embedded defaults: Redis, an Apache Kafka
broker, the ClickHouse service over chDB and the catalogue's MariaDB, all on
127.0.0.1, each stoppable by its PID file."""

from __future__ import annotations

import base64
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

from common.errors import PlatformError
from common.settings import Settings

log = logging.getLogger(__name__)


def process_running(pid: int) -> bool:
    """Alive and not a zombie (a service stopped by another process than the one that
    started it stays a zombie until its parent reaps it)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):  # no /proc (macOS): kill(0) is all we know
        return not stat.parent.parent.is_dir()


def _ended(pid: int, timeout_s: float) -> bool:
    """Whether the process ended within timeout_s (reaped, when it is our child)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:  # not our child
            if not process_running(pid):
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class LocalService:
    name: str
    command: list[str]
    port: int
    run_dir: Path
    stop_signal: int = signal.SIGTERM
    cwd: Path | None = None
    # Shared by every process of the platform: jobs leave it running; `services stop` stops it.
    shared: bool = False
    start_timeout_s: float = 15
    stop_timeout_s: float = 5
    port_setting: str | None = None  # the setting that moves it, when not <NAME>__LOCAL_PORT
    prepare: Callable[[], None] | None = None  # run before each start, under the start lock (a first-time init)
    ready: Callable[[], bool] | None = None  # up once this holds, beside the open port

    @property
    def pidfile(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return pid if process_running(pid) else None

    def start(self) -> bool:
        """Start unless already running; True when this call started it."""
        if self.pid() and _port_open(self.port):
            return False
        # alive without its port: another process is starting it and holds the lock until ready
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / f"{self.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting it at once: one starts, one waits
            return not self.pid() and self._start()

    def _start(self) -> bool:
        if _port_open(self.port):
            raise PlatformError(
                f"cannot start {self.name}: port {self.port} on 127.0.0.1 is taken by another process",
                f"stop that process or set LAMBDA_FEATURES_{self.port_setting or self.name.upper() + '__LOCAL_PORT'}",
            )
        if self.prepare:
            self.prepare()
        log = self.logfile.open("ab")
        proc = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.cwd
        )
        self.pidfile.write_text(str(proc.pid))
        wait = stop_after_delay(self.start_timeout_s)
        ready = retry(stop=wait, wait=wait_fixed(0.1), retry=retry_if_result(lambda ok: not ok))(
            lambda: proc.poll() is not None or self._up()
        )
        try:
            ready()
        except Exception:
            pass
        if proc.poll() is not None or not self._up():
            self.stop()
            raise PlatformError(f"{self.name} did not start; see {self.logfile}")
        return True

    def _up(self) -> bool:
        return _port_open(self.port) and (self.ready is None or self.ready())

    def stop(self) -> None:
        pid = self.pid()
        if pid:
            os.kill(pid, self.stop_signal)
            if not _ended(pid, self.stop_timeout_s):
                log.warning("%s (pid %d) did not stop within %.0f s: killing it", self.name, pid, self.stop_timeout_s)
                self._dump_threads(pid)
                os.kill(pid, signal.SIGKILL)
                _ended(pid, 10)  # its ports are free once it is gone
        self.pidfile.unlink(missing_ok=True)

    def _dump_threads(self, pid: int) -> None:
        """A JVM's threads into its log before it is killed: where its stop waited."""
        try:  # a diagnosis only: it never keeps the stop from killing the process
            if Path(f"/proc/{pid}/comm").read_text().strip() != "java" or not shutil.which("jcmd"):
                return
            with self.logfile.open("ab") as out:
                out.write(b"\n--- did not stop in time; its threads (jcmd Thread.print):\n")
                subprocess.run(["jcmd", str(pid), "Thread.print"], stdout=out, stderr=subprocess.STDOUT, timeout=20)
        except (OSError, subprocess.SubprocessError):
            pass


def redis_service(settings: Settings) -> LocalService:
    exe = shutil.which("redis-server")
    if not exe:
        raise PlatformError(
            "redis-server not found",
            "install it (`apt-get install redis-server`, done by `make setup`) or set LAMBDA_FEATURES_REDIS__URL",
        )
    data = settings.home / "redis"
    data.mkdir(parents=True, exist_ok=True)
    port = settings.redis.local_port
    cmd = [
        exe,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data),
        # durable: every write goes to the append-only file before its reply (fsynced every
        # second), so a killed redis-server comes back with all it acknowledged
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "60 1000",
        "--protected-mode",
        "yes",
    ]
    return LocalService("redis", cmd, port, settings.run_dir)


def kafka_service(settings: Settings, host: str = "127.0.0.1") -> LocalService:
    """Apache Kafka as one KRaft node (broker and controller in one JVM) on `host`, from the
    jars of jvm/pom.xml; its data under $HOME/kafka, formatted once, kept across restarts."""
    from common.jvm import JVM_DIR, classpath, jar_dir

    k = settings.kafka
    data, run = settings.kafka_dir, settings.run_dir
    conf = run / "kafka-server.properties"
    cp = classpath("kafka")
    java = shutil.which("java") or "java"

    def prepare() -> None:
        check_data_dir(data, k.local_min_free_mb)
        run.mkdir(parents=True, exist_ok=True)  # also when called before a start (tests/support/netns.py)
        conf.write_text(kafka_server_properties(settings, host))
        if (data / "meta.properties").is_file():
            return
        cluster = "-"
        while cluster.startswith("-"):  # as Kafka's Uuid.randomUuid: an id "-..." reads as an option (1 in 64)
            cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()  # Kafka's Uuid text
        out = subprocess.run(
            [java, "-cp", cp, "kafka.tools.StorageTool", "format", "--standalone", "-t", cluster, "-c", str(conf)],
            capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode:
            raise PlatformError(f"cannot format the Kafka data directory {data}: {(out.stderr or out.stdout)[-500:]}")

    cmd = [
        java, f"-Xmx{k.local_heap_mb}m", f"-Xms{min(64, k.local_heap_mb)}m", "-XX:+UseSerialGC",
        f"-Dlog4j2.configurationFile={JVM_DIR / 'broker-log4j2.properties'}",
    ]  # fmt: skip
    if settings.monitoring.enabled:  # its metrics for Prometheus, from its MBeans
        agent = jar_dir("agent") / "jmx_prometheus_javaagent.jar"
        rules = JVM_DIR / "kafka-jmx-exporter.yml"
        cmd.append(f"-javaagent:{agent}=127.0.0.1:{settings.monitoring.kafka_port}:{rules}")
    cmd += ["-cp", cp, "kafka.Kafka", str(conf)]
    # SIGTERM is a controlled shutdown: the logs are flushed and closed, so the next start
    # skips their recovery
    return LocalService(
        "kafka", cmd, k.local_port, run, start_timeout_s=240, stop_timeout_s=60, prepare=prepare,
        ready=lambda: kafka_ready(f"{host}:{k.local_port}"),
    )  # fmt: skip


def kafka_ready(bootstrap: str) -> bool:
    """The broker answers, and every partition has its leader again (after a restart the
    port opens before the partitions are led)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    try:
        topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2).topics.values()
    except KafkaException:
        return False
    return all(not t.error and all(p.leader >= 0 and not p.error for p in t.partitions.values()) for t in topics)


def kafka_server_properties(settings: Settings, host: str = "127.0.0.1") -> str:
    k = settings.kafka
    ctl = f"{host}:{k.local_controller_port}"
    props = {
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.bootstrap.servers": ctl,
        "listeners": f"PLAINTEXT://{host}:{k.local_port},CONTROLLER://{ctl}",
        "advertised.listeners": f"PLAINTEXT://{host}:{k.local_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": settings.kafka_dir,
        "num.partitions": k.partitions,
        # one node: every internal topic has one replica
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
        # few partitions for the internal topics: each is a log to open at every start
        "offsets.topic.num.partitions": 4,
        "transaction.state.log.num.partitions": 4,
        "share.coordinator.state.topic.num.partitions": 1,
        "log.retention.hours": k.local_retention_hours,
        "log.retention.bytes": k.local_retention_bytes,
        # retention drops whole segments: keep them small beside the byte cap
        "log.segment.bytes": min(k.local_retention_bytes // 4, 128 << 20),
        # one thread each on a laptop: fewer hand-offs per request (bench/broker_bench.py: about
        # a quarter less CPU per event than with two of each)
        "num.io.threads": 1,
        "num.network.threads": 1,
        "num.recovery.threads.per.data.dir": 2,
        # one node has no other broker to hand its partitions to: a controlled shutdown only
        # waits (up to 5 min) for the controller's approval; the logs are closed cleanly without it
        "controlled.shutdown.enable": "false",
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


def check_data_dir(path: Path, min_free_mb: int) -> None:
    """A data directory a server can write to, with room left: else an error naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-probe"
        probe.write_bytes(b"0")
        probe.unlink()
    except OSError as e:
        raise PlatformError(
            f"cannot write to the data directory {path}: {e.strerror or e}",
            "free it, fix its permissions, or set LAMBDA_FEATURES_HOME to another folder",
        ) from None
    free_mb = shutil.disk_usage(path).free // (1 << 20)
    if free_mb < min_free_mb:
        raise PlatformError(
            f"the disk of {path} is full: {free_mb} MB free, under the {min_free_mb} MB the broker needs",
            "free space there, set LAMBDA_FEATURES_HOME to another disk, or lower "
            "LAMBDA_FEATURES_KAFKA__LOCAL_MIN_FREE_MB",
        )


def clickhouse_service(settings: Settings) -> LocalService:
    """The ClickHouse HTTP interface over the embedded chDB (common/chdb_server.py): the one
    process that opens the data path, so any number of processes can use it at once."""
    settings.clickhouse_dir.mkdir(parents=True, exist_ok=True)
    port = settings.clickhouse.local_port
    cmd = [
        sys.executable,
        "-m",
        "common.chdb_server",
        "--path",
        str(settings.clickhouse_dir),
        "--port",
        str(port),
        "--pidfile",
        str(settings.run_dir / "clickhouse.pid"),
        "--log-level",
        settings.clickhouse.local_log_level,
    ]
    if settings.monitoring.enabled:
        cmd += ["--metrics-port", str(settings.monitoring.clickhouse_port)]
    repo = Path(__file__).resolve().parent.parent  # `-m common.chdb_server` imports this checkout
    return LocalService(
        "clickhouse", cmd, port, settings.run_dir, cwd=repo, shared=True, start_timeout_s=60, stop_timeout_s=40
    )


def _sbin(name: str) -> str | None:
    """A server binary, also where Debian puts it outside a non-root PATH."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")


def mariadb_service(settings: Settings) -> LocalService:
    """The catalogue's MariaDB (Debian's `mariadb-server`) on 127.0.0.1, its data under
    $HOME/catalog/mariadb, the binlog in ROW format with full row images and column names
    (what the CDC relay reads). The user `lambda`@`127.0.0.1` has no password: only local
    processes reach it, as with the local Redis."""
    exe, install = _sbin("mariadbd"), shutil.which("mariadb-install-db")
    if not exe or not install:
        raise PlatformError(
            "mariadbd not found",
            "install it (`apt-get install mariadb-server`, done by `make setup`) or set LAMBDA_FEATURES_CATALOG__URL",
        )
    data, run = settings.catalog_dir, settings.run_dir
    root = ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses to run as root unless told
    small = ["--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M"]
    init = run / "mariadb-init.sql"
    db = settings.catalog.database

    def prepare() -> None:
        init.write_text(
            f"CREATE DATABASE IF NOT EXISTS `{db}`;\n"
            "CREATE USER IF NOT EXISTS 'lambda'@'127.0.0.1';\n"
            "GRANT ALL PRIVILEGES ON *.* TO 'lambda'@'127.0.0.1';\n"
        )
        if (data / "mysql").is_dir():
            return
        data.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            [install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
             "--skip-test-db", *root, *small],
            capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode:
            shutil.rmtree(data, ignore_errors=True)
            raise PlatformError(f"mariadb-install-db failed on {data}: {(out.stderr or out.stdout)[-500:]}")

    port = settings.catalog.local_port
    cmd = [
        exe, "--no-defaults", f"--datadir={data}", f"--socket={run / 'mariadb.sock'}",
        f"--pid-file={run / 'mariadb.server.pid'}", "--bind-address=127.0.0.1", f"--port={port}",
        "--skip-name-resolve", "--default-time-zone=+00:00", f"--init-file={init}",
        f"--log-bin={data / 'binlog'}", "--server-id=1", "--binlog-format=ROW", "--binlog-row-image=FULL",
        "--binlog-row-metadata=FULL", *root, *small,
    ]  # fmt: skip
    return LocalService(
        "mariadb", cmd, port, run, start_timeout_s=60, stop_timeout_s=30, port_setting="CATALOG__LOCAL_PORT",
        prepare=prepare,
    )  # fmt: skip


def relay_service(settings: Settings, hold_ack_s: float = 0.0) -> LocalService:
    """The catalogue's CDC relay (catalog/relay.py) as a background process; up once its
    /metrics port is open."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    conf = settings.run_dir / "relay-settings.json"
    conf.touch(mode=0o600)  # it may hold the URLs of the stores, with their passwords
    conf.write_text(settings.model_dump_json())
    repo = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "catalog.relay", "--settings", str(conf)]
    if hold_ack_s:
        cmd += ["--hold-ack-s", str(hold_ack_s)]
    return LocalService(
        "catalog-relay", cmd, settings.catalog.relay_port, settings.run_dir, cwd=repo, start_timeout_s=90,
        stop_timeout_s=15, port_setting="CATALOG__RELAY_PORT",
    )  # fmt: skip


def prometheus_service(settings: Settings) -> LocalService:
    """Prometheus (Debian's `prometheus`) on 127.0.0.1, scraping every process of the platform
    with the rules of deploy/prometheus/; its data under $HOME/prometheus."""
    from common.prometheus import write_config

    exe = shutil.which("prometheus")
    if not exe:
        raise PlatformError(
            "prometheus not found",
            "install it (`apt-get install prometheus`, done by `make setup`) or set "
            "LAMBDA_FEATURES_MONITORING__LOCAL_PROMETHEUS=false",
        )
    settings.prometheus_dir.mkdir(parents=True, exist_ok=True)
    m = settings.monitoring
    cmd = [
        exe,
        f"--config.file={write_config(settings)}",
        f"--storage.tsdb.path={settings.prometheus_dir}",
        f"--storage.tsdb.retention.time={m.retention}",
        f"--web.listen-address=127.0.0.1:{m.prometheus_port}",
    ]
    return LocalService(
        "prometheus",
        cmd,
        m.prometheus_port,
        settings.run_dir,
        stop_timeout_s=30,
        port_setting="MONITORING__PROMETHEUS_PORT",
    )


def exporter_service(settings: Settings) -> LocalService:
    """The platform's exporter (monitoring/exporter.py): the Flink job's metrics from its REST
    API, Kafka lag, dead letters, late events, the latest data-quality and tiering results."""
    m = settings.monitoring
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    conf = settings.run_dir / "exporter-settings.json"
    conf.touch(mode=0o600)  # it may hold the URLs of the stores, with their passwords
    conf.write_text(settings.model_dump_json())
    cmd = [sys.executable, "-m", "monitoring.exporter", "--settings", str(conf)]
    repo = Path(__file__).resolve().parent.parent
    return LocalService(
        "exporter", cmd, m.exporter_port, settings.run_dir, cwd=repo, start_timeout_s=60, stop_timeout_s=15,
        port_setting="MONITORING__EXPORTER_PORT",
    )  # fmt: skip


def ensure_running(service: LocalService) -> bool:
    """Start a local service a command needs when it is not running, and say so; it keeps
    serving other processes afterwards (`lambda-features services stop` stops it)."""
    started = service.start()
    if started:
        log.info(
            "started the local %s on 127.0.0.1:%d (pid %s); `lambda-features services stop` stops it",
            service.name,
            service.port,
            service.pid(),
        )
    return started


def local_services(settings: Settings, monitoring: bool = True, catalog: bool = False) -> list[LocalService]:
    """The services the settings ask the platform to run itself; with `monitoring`, also the
    exporter and Prometheus (when MONITORING__ENABLED); with `catalog`, the catalogue's MariaDB
    and its CDC relay (`services start|stop`: the stream job reads the catalogue from Kafka and
    needs neither)."""
    out = []
    if not settings.redis.url:
        out.append(redis_service(settings))
    if not settings.kafka.bootstrap:
        out.append(kafka_service(settings))
    if not settings.clickhouse.url:
        out.append(clickhouse_service(settings))
    if catalog and not settings.catalog.url:
        out.append(mariadb_service(settings))
    if catalog and settings.catalog.relay:
        out.append(relay_service(settings))
    if monitoring and settings.monitoring.enabled:
        out.append(exporter_service(settings))
        if settings.monitoring.local_prometheus:
            out.append(prometheus_service(settings))
    return out
