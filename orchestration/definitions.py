"""The platform's Dagster definitions: `dagster dev -m orchestration.definitions`."""

from __future__ import annotations

import warnings

from dagster import AssetSelection, BetaWarning, Definitions, define_asset_job, in_process_executor

from common.settings import Settings, load_settings
from orchestration.assets.batch import batch_features_asset
from orchestration.assets.online import online_store_asset
from orchestration.assets.stream import archive_asset, stream_job_asset
from orchestration.assets.tiering import tiered_features_asset, tiered_rows_match
from orchestration.checks import dq_asset_checks
from orchestration.partitions import daily_partitions
from orchestration.resources import (
    ClickHouseResource,
    FlinkResource,
    ObjectStorageResource,
    PlatformResource,
    RedisResource,
    SparkResource,
)
from orchestration.schedules import daily_batch_schedule, daily_tiering_schedule
from orchestration.sensors import stream_supervisor_sensor

# single-run backfill policies are beta in Dagster 1.13; they are what makes a range one Spark job
warnings.filterwarnings("ignore", category=BetaWarning)


def build_definitions(settings: Settings) -> Definitions:
    stream_job = stream_job_asset(settings)
    archive = archive_asset(settings)
    batch = batch_features_asset(settings)
    online = online_store_asset(settings)
    tiered = tiered_features_asset(settings)
    deploy_job = define_asset_job("stream_deploy", selection=AssetSelection.assets(stream_job))
    daily_job = define_asset_job(
        "daily_batch",
        selection=AssetSelection.assets(archive, batch, online),
        partitions_def=daily_partitions(settings),
    )
    tiering_job = define_asset_job(
        "daily_tiering", selection=AssetSelection.assets(tiered), partitions_def=daily_partitions(settings)
    )
    platform = PlatformResource()
    return Definitions(
        assets=[stream_job, archive, batch, online, tiered],
        asset_checks=[*dq_asset_checks(settings), tiered_rows_match],
        jobs=[deploy_job, daily_job, tiering_job],
        schedules=[daily_batch_schedule(settings, daily_job), daily_tiering_schedule(settings, tiering_job)],
        sensors=[stream_supervisor_sensor(settings, deploy_job)],
        resources={
            "platform": platform,
            "flink": FlinkResource(platform=platform),
            "spark": SparkResource(platform=platform),
            "clickhouse": ClickHouseResource(platform=platform),
            "redis": RedisResource(platform=platform),
            "storage": ObjectStorageResource(platform=platform),
        },
        # steps of a run share one process: the chDB client and the PyFlink gateway are per process
        executor=in_process_executor,
    )


defs = build_definitions(load_settings())
