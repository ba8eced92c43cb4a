"""Dagster asset checks over dq_checks: consistency (blocking: a failed ERROR check holds
back the day's online publication), validity, completeness, and the live stream's freshness.
Every result also lands in ClickHouse features.dq_results."""

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    Definitions,
    MetadataValue,
    asset_check,
    multi_asset_check,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation

from common.repository import load_features
from common.settings import Settings
from dq_checks import CheckResult, completeness, consistency, freshness, record, referential_completeness, validity
from orchestration.assets.batch import clickhouse_key
from orchestration.partitions import run_days
from orchestration.resources import FlinkResource, PlatformResource


def _key(r: CheckResult) -> AssetCheckKey:
    owner = {"archive": AssetKey("archive"), "catalog": AssetKey("archive"), "online_store": AssetKey("stream_job")}
    asset = owner.get(r.feature, AssetKey(["clickhouse", r.feature]))
    return AssetCheckKey(asset, r.check)


def _merge(key: AssetCheckKey, results: list[CheckResult]) -> AssetCheckResult:
    """One Dagster result from the same check over the days of a run."""
    failed = [r for r in results if not r.passed]
    severity = "ERROR" if any(r.severity == "ERROR" for r in failed) else "WARN"
    metadata: dict = {"days": ", ".join(str(r.day) for r in results)}
    for r in results:
        prefix = f"{r.day} " if len(results) > 1 else ""
        metadata[f"{prefix}message"] = r.message
        metadata.update({f"{prefix}{k}": v for k, v in r.metrics.items()})
        if r.sample:
            metadata[f"{prefix}offending keys"] = MetadataValue.md("\n".join(f"- `{k}`" for k in r.sample))
    return AssetCheckResult(
        asset_key=key.asset_key,
        check_name=key.name,
        passed=not failed,
        severity=AssetCheckSeverity.ERROR if severity == "ERROR" else AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def _evaluate(
    context: AssetCheckExecutionContext,
    platform: PlatformResource,
    run: Callable[[Settings, date], list[CheckResult]],
) -> Iterator[AssetCheckResult]:
    s = platform.settings()
    results = [r for day in run_days(context) for r in run(s, day)]
    record(s, results, run_id=context.run.run_id)
    by_key: dict[AssetCheckKey, list[CheckResult]] = {}
    for r in results:
        by_key.setdefault(_key(r), []).append(r)
    selected = context.selected_asset_check_keys
    for key, rs in by_key.items():
        if key in selected:
            yield _merge(key, rs)


def _archive_checks(settings: Settings, day: date) -> list[CheckResult]:
    """The archive's completeness, and the share of its events of items the catalogue did not know."""
    return [*completeness(settings, day), referential_completeness(settings, day)]


def _specs(checks: list[str], features, blocking: bool, what: str) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(check, asset=clickhouse_key(f), blocking=blocking, description=f"{what} ({check})")
        for f in features
        for check in checks
    ]


def dq_asset_checks(settings: Settings) -> list[AssetChecksDefinition]:
    repo = load_features(settings)

    @multi_asset_check(
        specs=_specs(
            ["consistency"],
            repo.stream,
            True,
            "stream against batch for the day: keys only on one "
            "side, value mismatches, SMAPE, Jaccard; differences explained only by late events",
        ),
        can_subset=True,
    )
    def consistency_checks(context: AssetCheckExecutionContext, platform: PlatformResource):
        yield from _evaluate(context, platform, consistency)

    @multi_asset_check(
        specs=_specs(
            ["validity_values", "validity_schema"],
            (*repo.stream, *repo.batch),
            False,
            "value ranges, null rates and the table schema against the feature definition",
        ),
        can_subset=True,
    )
    def validity_checks(context: AssetCheckExecutionContext, platform: PlatformResource):
        yield from _evaluate(context, platform, validity)

    @multi_asset_check(
        specs=[
            AssetCheckSpec(
                "completeness_hours",
                asset="archive",
                description="hours without events between the day's first and last",
            ),
            AssetCheckSpec(
                "completeness_events",
                asset="archive",
                description="every source position of the day archived or dead-lettered, none twice",
            ),
            AssetCheckSpec(
                "referential_completeness",
                asset="archive",
                description="the share of the day's events of items the catalogue did not know at their time",
            ),
        ],
        can_subset=True,
    )
    def completeness_checks(context: AssetCheckExecutionContext, platform: PlatformResource):
        yield from _evaluate(
            context, platform, lambda s, day: [*completeness(s, day), referential_completeness(s, day)]
        )

    return [consistency_checks, validity_checks, completeness_checks, stream_freshness]


def freshness_evaluation(settings: Settings) -> AssetCheckEvaluation:
    """The live stream's freshness now (newest stream window, newest online update against the
    clock), as the supervisor reports it on stream_job; recorded in dq_results too."""
    now = datetime.now(UTC)
    results = freshness(settings, now.date(), now=now)
    record(settings, results)
    return AssetCheckEvaluation(
        asset_key=AssetKey("stream_job"),
        check_name="freshness",
        passed=all(r.passed for r in results),
        severity=AssetCheckSeverity.ERROR if any(r.blocking for r in results) else AssetCheckSeverity.WARN,
        metadata={r.feature: r.message for r in results},
    )


@asset_check(
    asset="stream_job",
    name="freshness",
    description="The live stream is fresh: its newest windows "
    "and the online store's newest update against the clock. Judged while the job runs; the "
    "stream supervisor re-evaluates it on every tick.",
)
def stream_freshness(flink: FlinkResource) -> AssetCheckResult:
    if not flink.deployment().status(with_lag=False).running:
        return AssetCheckResult(passed=True, metadata={"judged": False, "why": "no live stream job is running"})
    ev = freshness_evaluation(flink.settings())
    return AssetCheckResult(passed=ev.passed, severity=ev.severity, metadata=dict(ev.metadata))


def build_defs(settings: Settings) -> Definitions:
    return Definitions(asset_checks=dq_asset_checks(settings))
