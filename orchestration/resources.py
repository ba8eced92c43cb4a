"""Dagster resources for Flink, Spark, ClickHouse, Redis and object storage. Each reads the
platform settings (LAMBDA_FEATURES_*, embedded defaults when unset); a field set in Dagster
overrides its setting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from dagster import ConfigurableResource, Failure, MetadataValue, get_dagster_logger

from common.settings import Settings, load_settings
from streaming.deployment import StreamDeployment

REPO = Path(__file__).resolve().parent.parent


def _with(settings: Settings, section: str, **values: object) -> Settings:
    """The settings with these fields of one section replaced; None keeps a field as set."""
    update = {k: v for k, v in values.items() if v is not None}
    if not update:
        return settings
    return settings.model_copy(update={section: getattr(settings, section).model_copy(update=update)})


class PlatformResource(ConfigurableResource):
    """The platform settings; `home` overrides LAMBDA_FEATURES_HOME."""

    home: str | None = None

    def settings(self) -> Settings:
        return load_settings(**({"home": self.home} if self.home else {}))

    def env(self) -> dict[str, str]:
        """The environment of a platform CLI process with these settings."""
        env = dict(os.environ)
        if self.home:
            env["LAMBDA_FEATURES_HOME"] = self.home
        return env


class FlinkResource(ConfigurableResource):
    """The stream job's Flink: a cluster's REST address, or the local mini-cluster."""

    platform: PlatformResource
    jobmanager: str | None = None

    def settings(self) -> Settings:
        return _with(self.platform.settings(), "stream", jobmanager=self.jobmanager)

    def deployment(self) -> StreamDeployment:
        return StreamDeployment(self.settings())


class SparkResource(ConfigurableResource):
    """Runs the batch layer's Spark jobs, each in its own process (`lambda-features batch ...`)."""

    platform: PlatformResource
    master: str | None = None

    def run(self, *args: str) -> float:
        """Run `lambda-features batch ARGS`; its output goes to a log file under the platform's
        logs (and to the debug log); returns the wall seconds."""
        env = self.platform.env()
        if self.master:
            env["LAMBDA_FEATURES_BATCH__MASTER"] = self.master
        log = get_dagster_logger()
        logfile = self.platform.settings().home / "logs" / f"batch-{'-'.join(args[:3])}-{int(time.time())}.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)
        log.info("running `lambda-features batch %s`; its log: %s", " ".join(args), logfile)
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "batch", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        tail: list[str] = []
        assert proc.stdout is not None
        with logfile.open("w") as out:
            for line in proc.stdout:
                out.write(line)
                line = line.rstrip()
                if line:
                    log.debug(line)
                    tail = (tail + [line])[-30:]
        if proc.wait() != 0:
            raise Failure(
                description=f"`lambda-features batch {' '.join(args)}` failed (exit {proc.returncode}); see {logfile}",
                metadata={"output (last lines)": "\n".join(tail), "log": MetadataValue.path(str(logfile))},
            )
        return time.monotonic() - started


class ClickHouseResource(ConfigurableResource):
    """The platform's ClickHouse: a server URL, or the embedded chDB."""

    platform: PlatformResource
    url: str | None = None

    def settings(self) -> Settings:
        return _with(self.platform.settings(), "clickhouse", url=self.url)

    def client(self):
        from common.clickhouse import get_client

        return get_client(self.settings())


class RedisResource(ConfigurableResource):
    """The online store: a Redis URL, or the platform's local redis-server (started by
    `get_redis` when needed; it keeps serving afterwards, `lambda-features services stop` stops it)."""

    platform: PlatformResource
    url: str | None = None

    def settings(self) -> Settings:
        return _with(self.platform.settings(), "redis", url=self.url)


class ObjectStorageResource(ConfigurableResource):
    """Cold storage for tiering: an S3/OSS bucket (endpoint URL for OSS, MinIO...), or the local tier."""

    platform: PlatformResource
    bucket: str | None = None
    endpoint_url: str | None = None

    def settings(self) -> Settings:
        return _with(self.platform.settings(), "tiering", bucket=self.bucket, endpoint_url=self.endpoint_url)


def platform_resources() -> dict[str, ConfigurableResource]:
    """Every resource the assets, checks and sensors name, all on one PlatformResource."""
    platform = PlatformResource()
    return {
        "platform": platform,
        "flink": FlinkResource(platform=platform),
        "spark": SparkResource(platform=platform),
        "clickhouse": ClickHouseResource(platform=platform),
        "redis": RedisResource(platform=platform),
        "storage": ObjectStorageResource(platform=platform),
    }
