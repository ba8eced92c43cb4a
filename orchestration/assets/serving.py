"""Online against offline: the day's served feature values (the serving log) recomputed with
the training-set code, and the check that judges them (docs/serving.md#consistency)."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    Definitions,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from common.settings import Settings
from dq_checks import record
from dq_checks.result import CheckResult
from dq_checks.serving import serving_consistency
from orchestration.partitions import daily_partitions, days_of, run_days
from orchestration.resources import PlatformResource, SparkResource


def serving_consistency_asset(settings: Settings) -> AssetsDefinition:
    @asset(
        name="serving_consistency",
        group_name="online",
        owners=["team:serving"],
        kinds={"spark", "clickhouse"},
        partitions_def=daily_partitions(settings),
        backfill_policy=BackfillPolicy.single_run(),
        deps=["online_store"],
        description="The day's logged API answers (topic SERVING__LOG_TOPIC, archived to lake/serving_log) "
        "against the training-set code as known at each request: per feature, the share equal, served "
        "without an offline value, offline without a served one, SMAPE, the worst users. "
        "Rows in ClickHouse features.serving_consistency.",
    )
    def serving_consistency_day(context: AssetExecutionContext, spark: SparkResource) -> MaterializeResult:
        days = days_of(context)
        seconds = sum(spark.run("serving-consistency", "--date", d.isoformat()) for d in days)
        return MaterializeResult(metadata={"days": ", ".join(map(str, days)), "seconds": round(seconds, 1)})

    return serving_consistency_day


@asset_check(
    asset="serving_consistency",
    name="served_equals_offline",
    blocking=False,
    description="Per online feature, the share of served values that differ from the training-set code's "
    "without an explanation (in flight, STALE), against DQ__SERVING_MAX_UNEXPLAINED_WARN / _ERROR.",
)
def served_equals_offline(context, platform: PlatformResource) -> AssetCheckResult:
    s = platform.settings()
    results = [r for day in run_days(context) for r in serving_consistency(s, day)]
    record(s, results, run_id=context.run.run_id)
    return check_result(results)


def check_result(results: list[CheckResult]) -> AssetCheckResult:
    """The check over a run's days: each feature's message (per day when there are several, as
    in a backfill's run), its worst users, and which features failed on which days."""
    several = len({r.day for r in results}) > 1
    metadata: dict = {}
    failed: dict[str, list[str]] = {}
    for r in results:
        name = f"{r.feature} on {r.day}" if several else r.feature
        metadata[name] = r.message
        if r.sample:
            metadata[f"{name}: worst users"] = MetadataValue.md("\n".join(f"- `{k}`" for k in r.sample))
        if not r.passed:
            failed.setdefault(r.feature, []).append(str(r.day))
    metadata["failed"] = "; ".join(f"{f} ({', '.join(days)})" for f, days in failed.items()) or "none"
    blocking = any(r.blocking for r in results if not r.passed)
    return AssetCheckResult(
        passed=not failed,
        severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def build_defs(settings: Settings) -> Definitions:
    return Definitions(assets=[serving_consistency_asset(settings)], asset_checks=[served_equals_offline])
