"""One typed settings object: LAMBDA_FEATURES_* environment variables, an optional
TOML file (LAMBDA_FEATURES_CONFIG), and the embedded defaults when nothing is set."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from common.errors import PlatformError

ENV_PREFIX = "LAMBDA_FEATURES_"


class StreamSettings(BaseModel):
    """The PyFlink job."""

    parallelism: int = Field(2, ge=1)
    watermark_delay_ms: int = Field(3000, ge=0)
    # on-event makes replays deterministic; on-periodic costs less CPU on a busy topic (measured:
    # a live job at 10k events/s kept up only with it); auto: on-event for bounded replays,
    # on-periodic for an unbounded job
    watermark_emit: Literal["auto", "on-event", "on-periodic"] = "auto"
    state_ttl_hours: float = Field(7 * 24, gt=0)
    checkpoint_interval_ms: int = Field(10_000, ge=100)
    checkpoint_dir: str | None = None  # URI; default $HOME/checkpoints
    archive_rollover_s: int = Field(60, ge=1)  # archive files become visible after this and a checkpoint
    jobmanager: str | None = None  # host:port of a Flink cluster; None = local mini-cluster
    rest_port: int = Field(18081, ge=1, le=65535)  # Flink REST API of the supervised local job
    taskmanager_memory: str = "1024m"
    managed_memory: str = "512m"  # RocksDB's share and the window buffers' (local mini-cluster)
    # where keyed state lives: the JVM heap (hashmap: 18% less CPU per event than RocksDB,
    # measured; full checkpoints, state bounded by the heap) or RocksDB (off-heap,
    # incremental checkpoints: for state larger than the heap)
    state_backend: Literal["rocksdb", "hashmap"] = "hashmap"
    # latency levers: how long an output buffer waits to fill (Flink's default 100 ms; 10
    # for live serving) and how often periodic watermarks are emitted (watermark_emit on-periodic)
    buffer_timeout_ms: int = Field(100, ge=0)
    watermark_interval_ms: int = Field(200, ge=1)
    # the per-user feature sinks (upsert-kafka) fold each key's changes over this interval
    # (or until this many keys are buffered) and write the last one; 0 writes every change
    changelog_fold_ms: int = Field(100, ge=0)
    changelog_fold_rows: int = Field(2000, ge=1)
    # events before min_event_time, or over max_future_hours ahead of the clock when read, are dead-lettered
    min_event_time: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_future_hours: float = Field(24, ge=0)
    kafka_connector_dir: str | None = None  # folder with flink-sql-connector-kafka.jar (default .cache/jars/flink)
    # a Kafka partition silent this long is left out of the watermark, so the others' windows
    # still fire; when it speaks again, its events behind the watermark miss their windows
    # (docs/streaming.md), so it is longer than a broker or network outage should last
    source_idle_timeout_s: int = Field(60, ge=1)
    # a feature loader that cannot write to its store retries this long (committing nothing)
    # before it exits and its owner restarts it
    loader_retry_s: float = Field(300, gt=0)


class KafkaSettings(BaseModel):
    """Event bus: the source topic and the internal feature-changelog topics."""

    bootstrap: str | None = None  # None = the platform starts its own broker on 127.0.0.1
    local_port: int = Field(19092, ge=1, le=65535)
    # the embedded broker (one Apache Kafka KRaft node): its controller's port, heap, and
    # retention sized for a laptop (per partition: hours, and bytes beyond which the oldest
    # segments go); it refuses to start with less free disk than local_min_free_mb
    local_controller_port: int = Field(19093, ge=1, le=65535)
    local_heap_mb: int = Field(512, ge=64)
    local_retention_hours: int = Field(24, ge=1)
    local_retention_bytes: int = Field(1 << 30, ge=1 << 20)
    local_min_free_mb: int = Field(256, ge=0)
    events_topic: str = "lf.events"
    features_topic_prefix: str = "lf.features."
    group_id: str = "lambda-features"
    start: Literal["group-offsets", "earliest", "latest", "timestamp"] = "group-offsets"
    start_timestamp_ms: int | None = None
    partitions: int = Field(2, ge=1)
    # hop 1, events topic -> Flink's source: producers' linger, the source's fetch minimum
    # and wait. A broker's CPU goes on requests, not records: a fetch is answered once it
    # holds 64 KB or has waited 20 ms, so fetches stay few at any rate and a quiet topic
    # delays an event by 20 ms at most (bench/broker_bench.py)
    events_linger_ms: int = Field(20, ge=0)
    events_fetch_max_wait_ms: int = Field(20, ge=0)
    events_fetch_min_bytes: int = Field(64 << 10, ge=1)
    # hop 2, Flink's feature sinks -> feature topics -> the loaders
    features_linger_ms: int = Field(20, ge=0)
    features_fetch_max_wait_ms: int = Field(20, ge=0)
    features_fetch_min_bytes: int = Field(64 << 10, ge=1)


class RedisSettings(BaseModel):
    """Online store."""

    url: str | None = None  # None = the platform starts redis-server on 127.0.0.1
    local_port: int = Field(16379, ge=1, le=65535)
    key_prefix: str = "user:"
    key_ttl_s: int = Field(7 * 24 * 3600, ge=1)
    flush_records: int = Field(100, ge=1)
    flush_ms: int = Field(10, ge=1)


class ClickHouseSettings(BaseModel):
    """OLAP store: a server over HTTP when url is set, else the local chDB service (HTTP on
    127.0.0.1:local_port) over $HOME/clickhouse."""

    url: str | None = None  # e.g. http://user:pass@host:8123
    local_port: int = Field(18123, ge=1, le=65535)  # the local chDB service when url is unset
    local_log_level: Literal["DEBUG", "INFO", "WARNING"] = "INFO"  # DEBUG logs every request
    database: str = "features"
    flush_rows: int = Field(50_000, ge=1)
    flush_ms: int = Field(1000, ge=1)


class BatchSettings(BaseModel):
    """The PySpark batch layer."""

    master: str = "local[*]"  # or spark://host:7077, k8s://...
    driver_memory: str = "1g"
    shuffle_partitions: int = Field(8, ge=1)
    # how many days of the archive `apply` backfills for a new or changed feature
    history_days: int = Field(30, ge=1)


class OrchestrationSettings(BaseModel):
    """Dagster: partitions, the daily schedule, the stream supervisor and the UI."""

    start_date: date = date(2026, 1, 1)  # the first daily partition
    reconcile_delay_minutes: int = Field(60, ge=0, lt=24 * 60)  # after midnight UTC, for late events
    supervise_interval_s: int = Field(30, ge=5)
    # rescaling on backlog (streaming/autoscaler.py): the supervisor always computes the
    # parallelism the stream job needs; with autoscale on, it rescales the job to it
    autoscale: bool = False
    min_parallelism: int = Field(1, ge=1)
    max_parallelism: int = Field(8, ge=1)  # and never more than the events topic's partitions
    target_utilization: float = Field(0.7, gt=0, le=1)  # of each subtask's capacity
    utilization_boundary: float = Field(0.3, ge=0, lt=1)  # no rescale while within the target ± this
    catch_up_s: float = Field(300, gt=0)  # a backlog is to be read within this, beside the input
    rescale_cooldown_s: float = Field(600, ge=0)  # after a (re)start, before the next rescale
    ui_port: int = Field(3000, ge=1, le=65535)


class DQSettings(BaseModel):
    """Data-quality checks (dq_checks/): thresholds and what a failure means."""

    max_unexplained_rate: float = Field(0.0, ge=0, le=1)  # stream/batch rows differing without late events behind
    money_rel_tolerance: float = Field(1e-6, ge=0)  # relative tolerance for Decimal (money) values
    consistency_severity: Literal["ERROR", "WARN"] = "ERROR"
    missing_hour_severity: Literal["ERROR", "WARN"] = "WARN"  # a quiet hour can be real
    max_missing_events: int = Field(0, ge=0)  # source positions neither archived nor dead-lettered
    position_days: int = Field(1, ge=0)  # archive days either side of D searched for a day's source positions
    max_stream_lag_s: float = Field(600, gt=0)  # beyond the feature's own window or gap
    max_online_lag_s: float = Field(600, gt=0)
    freshness_severity: Literal["ERROR", "WARN"] = "ERROR"
    max_null_rate: float = Field(0.5, ge=0, le=1)  # per nullable feature column (WARN above it)
    # referential_completeness: the share of a day's events of items the catalogue does not know
    max_unknown_item_rate_warn: float = Field(0.01, ge=0, le=1)
    max_unknown_item_rate_error: float = Field(0.10, ge=0, le=1)
    sample_size: int = Field(10, ge=1)  # offending keys kept per result
    # serving_consistency: the share of logged values that differ from the training-set code's
    # without an explanation (WARN above the first, ERROR above the second)
    serving_max_unexplained_warn: float = Field(0.0, ge=0, le=1)
    serving_max_unexplained_error: float = Field(0.001, ge=0, le=1)
    # an event that reached the platform this long before a request may not be in the online
    # store yet: a difference for its user is explained as in flight
    serving_in_flight_ms: int = Field(2000, ge=0)


class CatalogSettings(BaseModel):
    """The item catalogue: a MySQL/MariaDB table, its binlog changes on a Kafka topic in
    debezium-json (docs/catalog.md)."""

    url: str | None = None  # mysql://user:pass@host:3306/db; None = the platform starts MariaDB on 127.0.0.1
    local_port: int = Field(13306, ge=1, le=65535)
    database: str = Field("catalog", pattern=r"^[A-Za-z0-9_]+$")  # the local MariaDB's; a url names its own
    topic: str = "lf.catalog.items"  # where the changes go (a Debezium connector's topic works as well)
    partitions: int = Field(1, ge=1)  # of the topic, when the platform creates it
    relay: bool = True  # false: a Debezium connector writes the topic, the platform's relay does not run
    relay_server_id: int = Field(1001, ge=1, le=4_294_967_295)  # the replica id the relay reads the binlog as
    relay_port: int = Field(19106, ge=1, le=65535)  # the relay's /metrics, and how its supervisor sees it up
    idle_timeout_s: float = Field(5, gt=0)  # a quiet catalogue stops holding back the join's watermark after this
    load_batch_rows: int = Field(500, ge=1)  # rows per transaction of `catalog load`


class MonitoringSettings(BaseModel):
    """Prometheus metrics: each long-running process serves /metrics on 127.0.0.1 at its port,
    and a local Prometheus server scrapes them all (docs/operations.md)."""

    enabled: bool = True  # false: no metrics endpoints, no exporter, no local Prometheus
    local_prometheus: bool = True  # false: a Prometheus of your own scrapes (deploy/prometheus/)
    prometheus_port: int = Field(19090, ge=1, le=65535)
    scrape_interval_s: int = Field(15, ge=1, le=300)
    retention: str = Field("15d", pattern=r"^[0-9]+(ms|s|m|h|d|w|y)$")
    stream_port: int = Field(19101, ge=1, le=65535)  # `stream run`: the runner
    loader_port: int = Field(19102, ge=1, le=65535)  # the online loader (Redis), a process of its own
    olap_loader_port: int = Field(19105, ge=1, le=65535)  # the OLAP loader (ClickHouse), a process of its own
    clickhouse_port: int = Field(19103, ge=1, le=65535)  # the local ClickHouse service
    exporter_port: int = Field(19104, ge=1, le=65535)  # Flink REST, Kafka lag, dead letters, DQ, tiering
    kafka_port: int = Field(19107, ge=1, le=65535)  # the embedded broker's JMX exporter (a Java agent)
    flink_port: int = Field(19108, ge=1, le=65535)  # Flink's Prometheus reporter on the local mini-cluster


class TieringSettings(BaseModel):
    """Cold storage of day partitions: S3/OSS when bucket is set, else a local directory.
    Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...)."""

    hot_days: int = Field(7, ge=0)  # a day D is moved once D < today - hot_days
    bucket: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str = Field("features", pattern=r"^[A-Za-z0-9._/-]*$")
    endpoint_url: str | None = None  # OSS, MinIO, moto...; None = AWS
    region: str | None = None
    addressing_style: Literal["path", "virtual"] = "path"  # OSS needs virtual
    local_dir: Path | None = None  # local tier; default $HOME/cold
    rows_per_object: int = Field(1_000_000, ge=1)
    multipart_threshold_mb: int = Field(64, ge=5)  # S3 parts are at least 5 MiB
    multipart_chunk_mb: int = Field(16, ge=5)

    @field_validator("prefix")
    @classmethod
    def _strip_prefix(cls, v: str) -> str:
        return v.strip("/")


class ServingSettings(BaseModel):
    """The online feature API (`lambda-features serve`)."""

    host: str = "127.0.0.1"
    port: int = Field(8600, ge=1, le=65535)
    api_key: SecretStr | None = None  # when set, /v1/* needs the header X-API-Key
    redis_timeout_s: float = Field(0.5, gt=0)  # a lookup Redis has not answered by then is a 503
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    max_users: int = Field(1000, ge=1)  # user ids in one POST /v1/features
    # STALE after: stream values older than this (None = STREAM__STATE_TTL_HOURS, when the
    # stream forgets the user's state); batch values as of a day older than today - batch_max_age_days
    stream_max_age_s: float | None = Field(None, gt=0)
    batch_max_age_days: int = Field(2, ge=0)
    workers: int = Field(1, ge=1)
    # the serving log (docs/serving.md): the share of requests whose answers go to log_topic
    # (0 turns it off); log_buffer records wait for the broker at most, the rest are dropped
    log_sample_rate: float = Field(1.0, ge=0, le=1)
    log_topic: str = "lf.serving.log"
    log_buffer: int = Field(100_000, ge=1)
    log_timeout_s: float = Field(30, gt=0)  # a record the broker has not taken by then is dropped


class Settings(BaseSettings):
    """Everything configurable, with the embedded defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", nested_model_default_partial_update=True
    )

    home: Path = Path(".lambda-features")
    # the feature repository: a .py file or package directory defining FEATURES (docs/features.md);
    # None = the e-commerce repository the platform ships (features/ecommerce.py)
    feature_repo: Path | None = None
    stream: StreamSettings = StreamSettings()
    batch: BatchSettings = BatchSettings()
    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    orchestration: OrchestrationSettings = OrchestrationSettings()
    dq: DQSettings = DQSettings()
    tiering: TieringSettings = TieringSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    serving: ServingSettings = ServingSettings()
    catalog: CatalogSettings = CatalogSettings()

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get(ENV_PREFIX + "CONFIG")
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)

    # Paths of the embedded state, all under home.
    @property
    def archive_dir(self) -> Path:
        return self.home / "lake" / "archive"

    @property
    def serving_log_dir(self) -> Path:
        """The serving log archived by request day (lake/serving_log/dt=D/part-*.parquet)."""
        return self.home / "lake" / "serving_log"

    @property
    def dead_letter_dir(self) -> Path:
        return self.home / "dead_letters"

    @property
    def staging_dir(self) -> Path:
        return self.home / "staging"

    @property
    def lake_features_dir(self) -> Path:
        return self.home / "lake" / "features"

    @property
    def lake_partials_dir(self) -> Path:
        """Daily partial aggregates of the 30-day features (lake/partials/<name>/dt=D/)."""
        return self.home / "lake" / "partials"

    @property
    def clickhouse_dir(self) -> Path:
        return self.home / "clickhouse"

    @property
    def kafka_dir(self) -> Path:
        """The embedded broker's data (its log.dirs)."""
        return self.home / "kafka"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def cold_dir(self) -> Path:
        return (self.tiering.local_dir or self.home / "cold").expanduser().resolve()

    @property
    def prometheus_dir(self) -> Path:
        return self.home / "prometheus"

    @property
    def catalog_dir(self) -> Path:
        """The local MariaDB's data directory."""
        return self.home / "catalog" / "mariadb"

    @property
    def catalog_history_dir(self) -> Path:
        """The catalogue's change history (lake/catalog/dt=D/part-*), written by the stream job."""
        return self.home / "lake" / "catalog"

    @property
    def checkpoint_uri(self) -> str:
        return self.stream.checkpoint_dir or (self.home / "checkpoints").as_uri()


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        name = ENV_PREFIX + "__".join(str(p) for p in e["loc"]).upper()
        lines.append(f"{name}: {e['msg']} (got {e.get('input')!r})")
    return "invalid settings:\n  " + "\n  ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation errors into one readable PlatformError."""
    config = os.environ.get(ENV_PREFIX + "CONFIG")
    if config and not Path(config).is_file():
        raise PlatformError(f"{ENV_PREFIX}CONFIG points at {config}, which is not a file")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        raise PlatformError(_describe(err), "fix or unset the settings named above") from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings."""
    return load_settings()
