"""Tiering: feature days older than tiering.hot_days move to object storage, still queryable;
the check that no row was lost, and the daily_tiering job and schedule."""

from datetime import timedelta

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetsDefinition,
    AssetSelection,
    BackfillPolicy,
    Definitions,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
    define_asset_job,
)

from common.repository import load_features
from common.settings import Settings
from orchestration.assets.batch import clickhouse_key
from orchestration.partitions import daily_partitions, days_of
from orchestration.resources import ObjectStorageResource
from orchestration.schedules import daily_tiering_schedule


def tiered_features_asset(settings: Settings) -> AssetsDefinition:
    @asset(
        group_name="tiering",
        owners=["team:platform"],
        kinds={"s3", "parquet"},
        partitions_def=daily_partitions(settings),
        backfill_policy=BackfillPolicy.single_run(),
        deps=[clickhouse_key(f) for f in load_features(settings).stream if f.windowed],
        description=f"Feature days older than {settings.tiering.hot_days} days before the day after the "
        "partition, moved from ClickHouse to object storage as Parquet (verified before the hot copy is "
        "dropped); the serving views keep reading them.",
    )
    def tiered_features(context: AssetExecutionContext, storage: ObjectStorageResource) -> MaterializeResult:
        from tiering import run

        s = storage.settings()
        today = days_of(context)[-1] + timedelta(days=1)
        report = run(s, today=today)
        for m in report.moves:
            context.log.info("moved %s %s: %d rows, %d bytes -> %s", m.table, m.day, m.rows, m.bytes, m.uri)
        where = (
            f"s3://{s.tiering.bucket}/{s.tiering.prefix}"
            if s.tiering.bucket
            else str(s.tiering.local_dir or s.home / "cold")
        )
        return MaterializeResult(
            metadata={
                "as of": str(today),
                "moved days before": str(report.cutoff),
                "partitions moved": len(report.moves),
                "rows moved": report.rows,
                "bytes written": report.bytes,
                "objects written": report.objects,
                "skipped (changed during the move)": len(report.skipped),
                "cold tier": where,
                "moves": MetadataValue.md(
                    "\n".join(f"- `{m.table}` {m.day}: {m.rows} rows, {m.bytes} bytes" for m in report.moves) or "none"
                ),
            }
        )

    return tiered_features


@asset_check(
    asset="tiered_features", description="For every cold day: hot plus cold rows equal the rows before the move."
)
def tiered_rows_match(storage: ObjectStorageResource) -> AssetCheckResult:
    from tiering import verify

    checks = verify(storage.settings())
    bad = [c for c in checks if not c.ok]
    return AssetCheckResult(
        passed=not bad,
        metadata={
            "cold days checked": len(checks),
            "mismatches": MetadataValue.md(
                "\n".join(
                    f"- `{c.table}` {c.day}: recorded {c.recorded}, hot {c.hot}, cold {c.cold} {c.error}" for c in bad
                )
                or "none"
            ),
        },
    )


def build_defs(settings: Settings) -> Definitions:
    tiered = tiered_features_asset(settings)
    job = define_asset_job(
        "daily_tiering", selection=AssetSelection.assets(tiered), partitions_def=daily_partitions(settings)
    )
    return Definitions(
        assets=[tiered],
        asset_checks=[tiered_rows_match],
        jobs=[job],
        schedules=[daily_tiering_schedule(settings, job)],
    )
