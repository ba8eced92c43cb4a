"""The batch layer for a day (or a range, as one Spark job): the reconciled streaming
features and the 30-day features, in the lake and in ClickHouse for BI; the daily_batch
job (the day's archive, these, the checks and the online store) and its schedule."""

from collections.abc import Iterator

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    BackfillPolicy,
    Definitions,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    define_asset_job,
    multi_asset,
)

from common.repository import load_features
from common.settings import Settings
from features.definitions import Feature
from orchestration.metadata import preview
from orchestration.partitions import daily_partitions, days_of
from orchestration.resources import ClickHouseResource, PlatformResource, SparkResource
from orchestration.schedules import daily_batch_schedule
from warehouse.tables import first_time_column

OWNERS = ["team:batch"]
WINDOW_DAYS = 30


def lake_key(f: Feature) -> AssetKey:
    return AssetKey(["lake", f.name])


def clickhouse_key(f: Feature) -> AssetKey:
    return AssetKey(["clickhouse", f.name])


def clickhouse_table(settings: Settings, f: Feature) -> str:
    db = settings.clickhouse.database
    return f"{db}.{f.name}_batch" if f.layer == "stream" else f"{db}.{f.name}"


def _specs(settings: Settings) -> list[AssetSpec]:
    repo = load_features(settings)
    specs = []
    for f in repo.stream:
        specs.append(
            AssetSpec(
                lake_key(f),
                deps=["archive"],
                group_name="batch",
                owners=OWNERS,
                kinds={"spark", "parquet"},
                description=f"{f.name} recomputed by Spark from the day's archive, late events included "
                f"(lake/features/{f.name}/dt=D/).",
            )
        )
    for f in repo.batch:
        specs.append(
            AssetSpec(
                lake_key(f),
                deps=[AssetDep("archive", partition_mapping=TimeWindowPartitionMapping(start_offset=1 - WINDOW_DAYS))],
                group_name="batch",
                owners=OWNERS,
                kinds={"spark", "parquet"},
                description=f"{f.name} as of the day, over the {WINDOW_DAYS} days up to it (lake/features/{f.name}/).",
            )
        )
    for f in (*repo.stream, *repo.batch):
        specs.append(
            AssetSpec(
                clickhouse_key(f),
                deps=[lake_key(f)],
                group_name="clickhouse",
                owners=["team:analytics"],
                kinds={"clickhouse"},
                description=f"ClickHouse table {clickhouse_table(settings, f)} for BI"
                + (
                    f"; analysts query the serving view {settings.clickhouse.database}.{f.name}."
                    if f.layer == "stream"
                    else "."
                ),
            )
        )
    return specs


def batch_features_asset(settings: Settings) -> AssetsDefinition:
    repo = load_features(settings)

    @multi_asset(
        name="batch_features",
        specs=_specs(settings),
        partitions_def=daily_partitions(settings),
        backfill_policy=BackfillPolicy.single_run(),
        description="One Spark job: reconcile and 30-day features for the day (or the range of a backfill).",
    )
    def batch_features(
        context: AssetExecutionContext, spark: SparkResource, clickhouse: ClickHouseResource, platform: PlatformResource
    ) -> Iterator[MaterializeResult]:
        days = days_of(context)
        first, last = days[0].isoformat(), days[-1].isoformat()
        seconds = spark.run("backfill", "--start", first, "--end", last, "--no-publish")
        s = platform.settings()
        ch = clickhouse.client()
        db = s.clickhouse.database
        status = {
            (feature, str(day)): (rows, complete, gaps)
            for feature, day, rows, complete, gaps in ch.query(
                f"SELECT feature, day, rows, complete, gaps FROM {db}.reconciled_days FINAL "
                f"WHERE day BETWEEN '{first}' AND '{last}'"
            ).result_rows
        }
        for f in repo.stream:
            rows = sum(status.get((f.name, d.isoformat()), (0, 0, ""))[0] for d in days)
            gaps = "; ".join(g for d in days if (g := status.get((f.name, d.isoformat()), (0, 1, ""))[2]))
            yield MaterializeResult(
                asset_key=lake_key(f),
                metadata={
                    "rows": rows,
                    "lake path": MetadataValue.path(str(s.lake_features_dir / f.name)),
                    "days": f"{first}..{last}",
                    "complete": not gaps,
                    "gaps": gaps or "none",
                    "Spark seconds": round(seconds, 1),
                },
            )
            t = f"{db}.{f.name}_batch"
            col = first_time_column(f) if f.windowed else None
            where = f"WHERE toDate({col}) BETWEEN '{first}' AND '{last}'" if col else ""
            yield MaterializeResult(
                asset_key=clickhouse_key(f),
                metadata={
                    "table": t,
                    "serving view": f"{db}.{f.name}",
                    "rows": ch.query(f"SELECT count() FROM {t} FINAL {where}").result_rows[0][0],
                    "preview": preview(ch, f"SELECT * FROM {t} FINAL {where}"),
                },
            )
        for f in repo.batch:
            t = f"{db}.{f.name}"
            where = f"WHERE as_of BETWEEN '{first}' AND '{last}'"
            rows = ch.query(f"SELECT count() FROM {t} FINAL {where}").result_rows[0][0]
            yield MaterializeResult(
                asset_key=lake_key(f),
                metadata={
                    "rows": rows,
                    "lake path": MetadataValue.path(str(s.lake_features_dir / f.name)),
                    "as of": f"{first}..{last}",
                    "Spark seconds": round(seconds, 1),
                },
            )
            yield MaterializeResult(
                asset_key=clickhouse_key(f),
                metadata={"table": t, "rows": rows, "preview": preview(ch, f"SELECT * FROM {t} FINAL {where}")},
            )

    return batch_features


def build_defs(settings: Settings) -> Definitions:
    batch = batch_features_asset(settings)
    daily = define_asset_job(
        "daily_batch",
        # the stream domain's archive, the online domain's store and its serving consistency, by key
        selection=AssetSelection.assets("archive", batch, "online_store", "serving_consistency"),
        partitions_def=daily_partitions(settings),
    )
    return Definitions(assets=[batch], jobs=[daily], schedules=[daily_batch_schedule(settings, daily)])
