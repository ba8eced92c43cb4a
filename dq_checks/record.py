"""Every check run lands in ClickHouse `features.dq_results`, one row per result, for BI."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from common.clickhouse import get_client
from common.settings import Settings
from dq_checks.result import CheckResult
from warehouse.schema import create_tables

COLUMNS = ["run_id", "checked_at", "day", "check", "feature", "passed", "severity", "message", "metrics", "sample"]


def record(settings: Settings, results: list[CheckResult], *, run_id: str | None = None) -> str:
    """Append the results as one run; returns the run id."""
    run_id = run_id or uuid.uuid4().hex[:12]
    if not results:
        return run_id
    create_tables(settings)
    now = datetime.now(UTC)
    rows = [
        [
            run_id,
            now,
            r.day,
            r.check,
            r.feature,
            int(r.passed),
            r.severity,
            r.message,
            {k: float(v) for k, v in r.metrics.items()},
            list(r.sample),
        ]
        for r in results
    ]
    get_client(settings).insert(f"{settings.clickhouse.database}.dq_results", rows, column_names=COLUMNS)
    return run_id
