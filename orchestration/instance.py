"""Running the definitions from the platform's own commands (`demo`, `ui`), on the
persistent Dagster instance under $LAMBDA_FEATURES_HOME/dagster so the UI shows the runs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date

from dagster import DagsterInstance, ExecuteInProcessResult

from common.settings import Settings

QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def ensure_dagster_home(settings: Settings) -> None:
    """DAGSTER_HOME under the platform's home, with SQLite storage and no telemetry."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    config = settings.dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")


def dagster_instance(settings: Settings) -> DagsterInstance:
    ensure_dagster_home(settings)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    return DagsterInstance.get()


@dataclass
class GraphRun:
    """What a run materialized and how its checks went."""

    run_id: str
    success: bool
    materialized: dict[str, dict] = field(default_factory=dict)  # asset key -> metadata
    checks: list[tuple[str, str, bool, str]] = field(default_factory=list)  # asset, check, passed, severity
    error: str | None = None


def _root(error) -> str:
    """The innermost message of a serialized error: what went wrong, not where Dagster saw it."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()[:500]


def _summary(result: ExecuteInProcessResult) -> GraphRun:
    run = GraphRun(run_id=result.run_id, success=result.success)
    for event in result.get_asset_materialization_events():
        m = event.event_specific_data.materialization
        run.materialized[m.asset_key.to_user_string()] = {k: v.value for k, v in m.metadata.items()}
    for ev in result.get_asset_check_evaluations():
        run.checks.append((ev.asset_key.to_user_string(), ev.check_name, ev.passed, ev.severity.value))
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        run.error = "; ".join(_root(e.step_failure_data.error) for e in failures)
    return run


def replay_stream(settings: Settings, files: list[str], fmt: str) -> GraphRun:
    """Materialize stream_job over files as a bounded stream."""
    from orchestration.definitions import build_definitions

    job = build_definitions(settings).resolve_job_def("stream_deploy")
    config = {"ops": {"stream_job": {"config": {"replay": files, "format": fmt}}}} | QUIET
    return _summary(
        job.execute_in_process(run_config=config, instance=dagster_instance(settings), raise_on_error=False)
    )


def materialize_days(settings: Settings, first: date, last: date, job_name: str = "daily_batch") -> GraphRun:
    """A daily job for a range of days as one run: `daily_batch` (archive, batch features,
    ClickHouse, checks, online store: one Spark job for the whole range) or `daily_tiering`."""
    from orchestration.definitions import build_definitions

    job = build_definitions(settings).resolve_job_def(job_name)
    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
    run = job.execute_in_process(run_config=QUIET, instance=dagster_instance(settings), tags=tags, raise_on_error=False)
    return _summary(run)
