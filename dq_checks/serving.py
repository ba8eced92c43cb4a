"""Served against offline: the latest `features.serving_consistency` run of a day (written by
batch/serving_consistency.py), judged per feature by its unexplained rate against
DQ__SERVING_MAX_UNEXPLAINED_WARN and DQ__SERVING_MAX_UNEXPLAINED_ERROR."""

from __future__ import annotations

from datetime import date

from common.clickhouse import get_client
from common.settings import Settings
from dq_checks.result import CheckResult
from warehouse.schema import create_tables
from warehouse.tables import SERVING_CONSISTENCY as TABLE
from warehouse.tables import SERVING_COUNTS as COUNTS

CHECK = "serving_consistency"


def judge(settings: Settings, day: date, feature: str, m: dict[str, float], worst: list[str]) -> CheckResult:
    """One feature's result from its counts and rates."""
    dq = settings.dq
    if not m["values"]:  # a log that is off or lost is worth a look, not a pass
        return CheckResult(
            CHECK, feature, day, False, "WARN",
            f"no served value of {feature} logged on {day}: is the serving log on (SERVING__LOG_SAMPLE_RATE) "
            "and its broker reachable (lf_serving_log_dropped_total)?", m,
        )  # fmt: skip
    rate = m["unexplained_rate"]
    severity = "ERROR" if rate > dq.serving_max_unexplained_error else "WARN"
    differ = int(m["values"] - m["equal"])
    message = (
        f"{m['equal_rate']:.2%} of {int(m['values']):,} served values equal offline; {differ:,} differ "
        f"(served, none offline {int(m['served_not_offline']):,}; offline, none served "
        f"{int(m['offline_not_served']):,}; values {int(m['value_mismatches']):,}): explained in flight "
        f"{int(m['explained_in_flight']):,}, stale {int(m['explained_stale']):,}; unexplained {int(m['unexplained']):,}"
    )
    if "smape" in m:
        message += f"; SMAPE {m['smape']:.4f}"
    return CheckResult(CHECK, feature, day, rate <= dq.serving_max_unexplained_warn, severity, message, m, worst)


def serving_consistency(settings: Settings, day: date) -> list[CheckResult]:
    """One result per online feature from the day's latest run; a WARN when there is none."""
    db = settings.clickhouse.database
    client = get_client(settings)
    create_tables(settings)
    cols = ", ".join(f"argMax({c}, checked_at)" for c in (*COUNTS, "equal_rate", "unexplained_rate", "smape"))
    rows = client.query(
        f"SELECT feature, {cols}, argMax(worst_users, checked_at) FROM {db}.{TABLE} "
        f"WHERE day = '{day.isoformat()}' AND run_id = (SELECT argMax(run_id, checked_at) FROM {db}.{TABLE} "
        f"WHERE day = '{day.isoformat()}') GROUP BY feature ORDER BY feature"
    ).result_rows
    if not rows:
        return [
            CheckResult(
                CHECK, "serving_log", day, False, "WARN",
                f"no consistency run for {day}: run `lambda-features consistency --date {day}`",
            )
        ]  # fmt: skip
    out = []
    for feature, *values, worst in rows:
        m = dict(zip((*COUNTS, "equal_rate", "unexplained_rate", "smape"), values, strict=True))
        if m["smape"] is None:
            del m["smape"]
        out.append(judge(settings, day, feature, {k: float(v) for k, v in m.items()}, list(worst)))
    return out
