"""The structured result every data-quality check returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

Severity = Literal["ERROR", "WARN", "INFO"]


@dataclass(frozen=True)
class CheckResult:
    """One check on one feature (or the archive, or the online store) for one day.

    `severity` is what a failure means (ERROR blocks publication); INFO marks a result that
    only informs. `sample` holds a few offending keys, `metrics` numbers for the UI and BI.
    """

    check: str  # a Dagster-safe name: consistency, completeness_hours, validity_schema, ...
    feature: str  # a feature name, or "archive" / "online_store"
    day: date
    passed: bool
    severity: Severity
    message: str
    metrics: dict[str, float] = field(default_factory=dict)
    sample: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        """A failed ERROR check: the CLI exits non-zero, Dagster blocks publication."""
        return not self.passed and self.severity == "ERROR"
