"""Create the PyFlink TableEnvironment: local mini-cluster or a remote JobManager."""

from __future__ import annotations

import os
from pathlib import Path

from common.errors import PlatformError
from common.jvm import JARS
from common.settings import Settings

CONNECTOR_JAR = "flink-sql-connector-kafka.jar"
EVENT_FORMAT_JAR = "lambda-features-jvm.jar"  # our own (jvm/): the format that reads each event once
# As deploy/flink/config.yaml. Left out: ids no rule or dashboard reads (on every series of a
# task, they tripled the size of a scrape: 3.5 MB, 98 s to serve on a loaded machine) and
# per-second rates of counters, which Prometheus computes from the counters themselves.
PROMETHEUS_REPORTER_OPTIONS = {
    "factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
    "scope.variables.excludes": "task_attempt_id;task_attempt_num;tm_id;host;operator_id",
    "filter.excludes": "*:numBytes*;*:mailboxLatencyMs*;*:numRecords*PerSecond",
}


def prometheus_reporter_jar() -> Path:
    """Flink's Prometheus reporter, as the apache-flink wheel ships it (in its plugins folder)."""
    import pyflink

    found = sorted(
        (Path(pyflink.__file__).parent / "plugins" / "metrics-prometheus").glob("flink-metrics-prometheus-*.jar")
    )
    if not found:
        raise PlatformError(
            "Flink's Prometheus reporter jar is missing from the apache-flink package",
            "reinstall it (`make setup`), or set LAMBDA_FEATURES_MONITORING__ENABLED=false",
        )
    return found[-1]


def kafka_job_jars(settings: Settings) -> list[Path]:
    """The official Flink Kafka SQL connector (one shaded jar with kafka-clients) and our event
    format, from jvm/pom.xml; on the mini-cluster's class path and shipped with a job to a cluster."""
    jar = Path(settings.stream.kafka_connector_dir or JARS / "flink") / CONNECTOR_JAR
    if not jar.is_file():
        raise PlatformError(
            f"Flink Kafka connector jar missing: {jar}",
            "run `make setup` (it fetches it into .cache/jars/flink) or set "
            f"LAMBDA_FEATURES_STREAM__KAFKA_CONNECTOR_DIR to a folder holding {CONNECTOR_JAR}",
        )
    ours = JARS / "flink" / EVENT_FORMAT_JAR
    if not ours.is_file():
        raise PlatformError(f"the event format's jar is missing: {ours}", "run `make setup` (it builds jvm/)")
    return [jar, ours]


def create_table_env(
    settings: Settings, with_kafka: bool, pipeline_name: str, restore_path: str | None = None, rest_port: int = 0
):  # -> TableEnvironment
    """A streaming TableEnvironment configured from the settings. A local mini-cluster serves
    Flink's REST API on `rest_port` (0: any free port)."""
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FLINK_LOG_DIR", str(logs))
    tmp = settings.home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    # the planner jar is unpacked into java.io.tmpdir at every start: keep it under home
    os.environ.setdefault("JVM_ARGS", f"-Xmx1g -Djava.io.tmpdir={tmp}")
    if settings.monitoring.enabled and not settings.stream.jobmanager:
        # The local executor gives its mini-cluster no plugin manager, so metric reporters are
        # found on the JVM's classpath only (ServiceLoader); PyFlink's gateway adds HADOOP_CLASSPATH to it.
        jar = str(prometheus_reporter_jar())
        if jar not in os.environ.get("HADOOP_CLASSPATH", "").split(os.pathsep):
            os.environ["HADOOP_CLASSPATH"] = os.pathsep.join(filter(None, [jar, os.environ.get("HADOOP_CLASSPATH")]))
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    conf = Configuration()
    for k, v in flink_config(settings, with_kafka, pipeline_name, restore_path, rest_port).items():
        conf.set_string(k, v)
    env_settings = EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(conf).build()
    return TableEnvironment.create(env_settings)


def flink_config(
    settings: Settings, with_kafka: bool, pipeline_name: str, restore_path: str | None = None, rest_port: int = 0
) -> dict[str, str]:
    """The Flink configuration of the job, from the settings."""
    s = settings.stream
    tmp = settings.home / "tmp"
    values = {
        "pipeline.name": pipeline_name,
        "parallelism.default": str(s.parallelism),
        "table.local-time-zone": "UTC",
        "table.exec.state.ttl": f"{int(s.state_ttl_hours * 3600 * 1000)} ms",
        "execution.checkpointing.interval": f"{s.checkpoint_interval_ms} ms",
        "execution.checkpointing.dir": f"{settings.checkpoint_uri.rstrip('/')}/{pipeline_name}",
        "execution.checkpointing.incremental": "true",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "2",
        "state.backend.type": s.state_backend,
        "pipeline.object-reuse": "true",
        "execution.buffer-timeout.interval": f"{s.buffer_timeout_ms} ms",
        "pipeline.auto-watermark-interval": f"{s.watermark_interval_ms} ms",
        # managed memory holds RocksDB's cache and write buffers, and with either backend
        # the window aggregations' buffers (with none, they fail to open). Starved,
        # RocksDB halves the job's speed (measured: 500k events 41 s -> 26 s with 512m).
        "taskmanager.memory.managed.size": s.managed_memory,
        "io.tmp.dirs": str(tmp),
        "taskmanager.memory.process.size": s.taskmanager_memory,
        "rest.bind-address": "127.0.0.1",
        # No mini-batch: with it, EXPLAIN shows a processing-time assigner under the archive
        # and last_event_time (docs/streaming.md): wall-clock watermarks would mark every
        # replayed event late.
        "table.exec.mini-batch.enabled": "false",
        # A file sink's committer runs alone with max parallelism 1; chained to its writer at
        # parallelism 1, its state would be recorded under the writer's max parallelism, and a
        # rescale to 2 could not restore it ("Max parallelism mismatch"). Never chained, both
        # keep one shape at every parallelism.
        "pipeline.operator-chaining.chain-operators-with-different-max-parallelism": "false",
        "rest.address": "127.0.0.1",
        "rest.port": str(rest_port),
    }
    if s.state_backend == "rocksdb":
        values["state.backend.rocksdb.timer-service.factory"] = "HEAP"
    if settings.monitoring.enabled and not s.jobmanager:
        # Flink's own metrics under their standard names (docs/operations.md); a cluster
        # configures its reporter itself (deploy/flink/config.yaml)
        values |= {"metrics.reporter.prom." + k: v for k, v in PROMETHEUS_REPORTER_OPTIONS.items()}
        values["metrics.reporter.prom.port"] = str(settings.monitoring.flink_port)
    if s.jobmanager:
        host, _, port = s.jobmanager.rpartition(":")
        values |= {"execution.target": "remote", "rest.address": host, "rest.port": port or "8081"}
    if restore_path:
        values["execution.state-recovery.path"] = restore_path
        # a savepoint of an older feature definition may hold state no operator claims now
        values["execution.state-recovery.ignore-unclaimed-state"] = "true"
    if with_kafka:
        values["pipeline.jars"] = ";".join(j.as_uri() for j in kafka_job_jars(settings))
    return values
