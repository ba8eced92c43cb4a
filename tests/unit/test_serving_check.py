"""The serving-consistency asset check's result over a run's days: one day reads per feature,
several days (a backfill's run) per feature and day, and each failed feature is named once
with its days."""

from datetime import date

from dagster import AssetCheckSeverity

from dq_checks.result import CheckResult
from orchestration.assets.serving import check_result

D1, D2 = date(2026, 1, 1), date(2026, 1, 2)


def result(feature: str, day: date, passed: bool, severity: str = "WARN", sample=()) -> CheckResult:
    return CheckResult("served_equals_offline", feature, day, passed, severity, f"{feature} {day}", sample=list(sample))


def test_one_day_reads_per_feature():
    got = check_result([result("cart_amount", D1, True), result("last_searches", D1, False, sample=["user 7: 2"])])
    assert got.passed is False and got.severity == AssetCheckSeverity.WARN
    meta = {k: v.value if hasattr(v, "value") else v for k, v in got.metadata.items()}
    assert meta["cart_amount"] == "cart_amount 2026-01-01"
    assert meta["last_searches: worst users"] == "- `user 7: 2`"
    assert meta["failed"] == "last_searches (2026-01-01)"


def test_several_days_name_each_failed_feature_once_with_its_days():
    got = check_result(
        [
            result("cart_amount", D1, False),
            result("cart_amount", D2, False, "ERROR"),
            result("last_searches", D1, True),
            result("last_searches", D2, True),
        ]
    )
    assert got.passed is False and got.severity == AssetCheckSeverity.ERROR
    meta = {k: v.value if hasattr(v, "value") else v for k, v in got.metadata.items()}
    assert meta["failed"] == "cart_amount (2026-01-01, 2026-01-02)"
    assert {"cart_amount on 2026-01-01", "cart_amount on 2026-01-02", "last_searches on 2026-01-02"} <= set(meta)


def test_all_passed():
    got = check_result([result("cart_amount", D1, True)])
    assert got.passed is True
    assert got.metadata["failed"].value == "none"
