"""Data-quality checks as plain functions returning `CheckResult`s: stream against batch
(consistency), the archive (completeness), events of items the catalogue did not know
(referential completeness), the live stream (freshness) and the feature tables (validity).
Dagster turns them into asset checks; `record` stores them for BI."""

from dq_checks.completeness import completeness
from dq_checks.consistency import consistency
from dq_checks.freshness import freshness
from dq_checks.record import record
from dq_checks.referential import referential_completeness
from dq_checks.result import CheckResult
from dq_checks.run import run_checks
from dq_checks.validity import validity

__all__ = [
    "CheckResult",
    "completeness",
    "consistency",
    "freshness",
    "record",
    "referential_completeness",
    "run_checks",
    "validity",
]
