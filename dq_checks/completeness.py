"""Is the archive whole? Hours without events inside a day, and source positions (Kafka
partition and offset, or file and line) that were neither archived nor dead-lettered."""

from __future__ import annotations

from datetime import date, timedelta

from common import archive
from common.clickhouse import get_client
from common.settings import Settings
from dq_checks import sources
from dq_checks.result import CheckResult


def hours(settings: Settings, day: date) -> CheckResult:
    """Hours without archived events between the day's first and last archived hour."""
    gaps = archive.missing_hours(settings, day)
    if not archive.part_files(settings, day):
        return CheckResult(
            "completeness_hours", "archive", day, False, "ERROR", f"no archived events for {day}",
            sample=[str(archive.day_dir(settings, day))],
        )  # fmt: skip
    message = f"{len(gaps)} hour(s) without events inside the day" if gaps else "every hour of the span has events"
    return CheckResult(
        "completeness_hours", "archive", day, not gaps, settings.dq.missing_hour_severity, message,
        {"missing_hours": len(gaps)}, gaps[: settings.dq.sample_size],
    )  # fmt: skip


def positions_sql(settings: Settings, day: date) -> str:
    """Per source partition: the day's position range, and the positions in it seen in the
    archive (days around D: late events sit in other days' folders) or among dead letters."""
    k = settings.dq.position_days
    around = [day + timedelta(days=i) for i in range(-k, k + 1)]
    ranges = (
        f"SELECT src_part, min(src_off) AS lo, max(src_off) AS hi FROM {sources.archive(settings, [day])} "
        "GROUP BY src_part"
    )
    seen = (
        f"SELECT src_part, src_off, 1 AS archived FROM {sources.archive(settings, around)} UNION ALL "
        f"SELECT assumeNotNull(src_part), assumeNotNull(src_off), 0 FROM ({sources.dead_letter_positions(settings)}) "
        "WHERE src_part IS NOT NULL AND src_off IS NOT NULL"
    )
    per_part = (
        "SELECT r.src_part AS part, any(r.lo) AS lo, any(r.hi) AS hi, uniqExact(s.src_off) AS present, "
        "countIf(s.archived = 1) - uniqExactIf(s.src_off, s.archived = 1) AS duplicated, "
        "countIf(s.archived = 0) AS dead_letters, arraySort(groupUniqArray(s.src_off)) AS offs "
        f"FROM ({ranges}) AS r INNER JOIN ({seen}) AS s ON r.src_part = s.src_part "
        "WHERE s.src_off BETWEEN r.lo AND r.hi GROUP BY r.src_part"
    )
    # gaps: consecutive present positions more than one apart
    return (
        "SELECT part, lo, hi, present, duplicated, dead_letters, hi - lo + 1 - present AS missing, "
        "arrayFilter((a, b) -> b - a > 1, arrayPopBack(offs), arrayPopFront(offs)) AS gap_starts, "
        "arrayFilter((b, a) -> b - a > 1, arrayPopFront(offs), arrayPopBack(offs)) AS gap_ends "
        f"FROM ({per_part}) ORDER BY part"
    )


def events(settings: Settings, day: date) -> CheckResult:
    """Events archived against events consumed by the stream: within each source partition
    every position between the day's first and last must be archived or dead-lettered."""
    rows = get_client(settings).query(positions_sql(settings, day), settings=sources.JSON_SETTINGS).result_rows
    missing = sum(r[6] for r in rows)
    duplicated = sum(r[4] for r in rows)
    sample = []
    for part, _lo, _hi, _present, _dup, _dead, _missing, starts, ends in rows:
        for a, b in zip(starts, ends, strict=True):
            sample.append(f"src_part={part}, src_off={a + 1}" + (f"..{b - 1}" if b - 1 > a + 1 else ""))
    metrics = {
        "partitions": len(rows),
        "positions": sum(r[2] - r[1] + 1 for r in rows),
        "archived_or_dead": sum(r[3] for r in rows),
        "dead_letters": sum(r[5] for r in rows),
        "missing": missing,
        "duplicated": duplicated,
    }
    passed = missing <= settings.dq.max_missing_events and duplicated == 0
    message = (
        f"{missing:,} source position(s) neither archived nor dead-lettered, {duplicated:,} archived twice, "
        f"over {len(rows)} source partition(s)"
    )
    if duplicated:
        dups = get_client(settings).query(
            f"SELECT src_part, src_off FROM {sources.archive(settings, [day])} GROUP BY src_part, src_off "
            f"HAVING count() > 1 ORDER BY src_part, src_off LIMIT {settings.dq.sample_size}",
            settings=sources.JSON_SETTINGS,
        )
        sample += [f"src_part={p}, src_off={o} archived twice" for p, o in dups.result_rows]
    return CheckResult(
        "completeness_events", "archive", day, passed, "ERROR", message, metrics, sample[: settings.dq.sample_size]
    )


def completeness(settings: Settings, day: date) -> list[CheckResult]:
    """Missing hours (WARN by default: a quiet hour can be real) and missing events (ERROR)."""
    return [hours(settings, day), events(settings, day)]
