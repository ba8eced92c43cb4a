"""One typed settings object: LAMBDA_FEATURES_* environment variables, an optional
TOML file (LAMBDA_FEATURES_CONFIG), and the embedded defaults when nothing is set."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
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
    # on-event makes replays deterministic; on-periodic is cheaper on a busy Kafka topic.
    watermark_emit: Literal["on-event", "on-periodic"] = "on-event"
    state_ttl_hours: float = Field(7 * 24, gt=0)
    checkpoint_interval_ms: int = Field(10_000, ge=100)
    checkpoint_dir: str | None = None  # URI; default $HOME/checkpoints
    archive_rollover_s: int = Field(60, ge=1)  # archive files become visible after this and a checkpoint
    jobmanager: str | None = None  # host:port of a Flink cluster; None = local mini-cluster
    taskmanager_memory: str = "1024m"
    managed_memory: str = "512m"  # RocksDB's share (local mini-cluster)
    # events outside [min_event_time, job start + max_future_hours] are dead-lettered
    min_event_time: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_future_hours: float = Field(24, ge=0)
    kafka_connector_dir: str | None = None  # folder with flink-connector-kafka.jar, kafka-clients.jar


class KafkaSettings(BaseModel):
    """Event bus: the source topic and the internal feature-changelog topics."""

    bootstrap: str | None = None  # None = the platform starts its own broker on 127.0.0.1
    local_port: int = Field(19092, ge=1, le=65535)
    events_topic: str = "lf.events"
    features_topic_prefix: str = "lf.features."
    group_id: str = "lambda-features"
    start: Literal["group-offsets", "earliest", "latest", "timestamp"] = "group-offsets"
    start_timestamp_ms: int | None = None
    partitions: int = Field(2, ge=1)


class RedisSettings(BaseModel):
    """Online store."""

    url: str | None = None  # None = the platform starts redis-server on 127.0.0.1
    local_port: int = Field(16379, ge=1, le=65535)
    key_prefix: str = "user:"
    key_ttl_s: int = Field(7 * 24 * 3600, ge=1)
    flush_records: int = Field(100, ge=1)
    flush_ms: int = Field(10, ge=1)


class ClickHouseSettings(BaseModel):
    """OLAP store: a server over HTTP when url is set, else chDB under $HOME/clickhouse."""

    url: str | None = None  # e.g. http://user:pass@host:8123
    database: str = "features"
    flush_rows: int = Field(50_000, ge=1)
    flush_ms: int = Field(1000, ge=1)


class BatchSettings(BaseModel):
    """The PySpark batch layer."""

    master: str = "local[*]"  # or spark://host:7077, k8s://...
    driver_memory: str = "1g"
    shuffle_partitions: int = Field(8, ge=1)


class Settings(BaseSettings):
    """Everything configurable, with the embedded defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", nested_model_default_partial_update=True
    )

    home: Path = Path(".lambda-features")
    stream: StreamSettings = StreamSettings()
    batch: BatchSettings = BatchSettings()
    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()

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
    def run_dir(self) -> Path:
        return self.home / "run"

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
