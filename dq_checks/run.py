"""All checks for a day, in one call."""

from __future__ import annotations

from datetime import date, datetime

from common.settings import Settings
from dq_checks.completeness import completeness
from dq_checks.consistency import consistency
from dq_checks.freshness import freshness
from dq_checks.referential import referential_completeness
from dq_checks.result import CheckResult
from dq_checks.validity import validity
from warehouse.schema import create_tables


def run_checks(settings: Settings, day: date, *, now: datetime | None = None) -> list[CheckResult]:
    """Consistency, completeness, referential completeness, validity for `day`, and freshness when `day` is today."""
    create_tables(settings)
    return (
        consistency(settings, day)
        + completeness(settings, day)
        + [referential_completeness(settings, day)]
        + freshness(settings, day, now)
        + validity(settings, day)
    )
