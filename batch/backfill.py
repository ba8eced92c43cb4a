"""Backfill a date range: reconcile and 30-day features for every day, one Spark session.
Each day replaces itself exactly, so a range can be re-run or resumed at any day."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from batch.reconcile import require_ended
from common.errors import PlatformError
from common.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class BackfillResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # no archive for the day
    incomplete: dict[str, str] = field(default_factory=dict)  # day -> gaps
    seconds: float = 0.0


def check_range(start: date, end: date) -> list[date]:
    if start > end:
        raise PlatformError(f"the range is reversed: --start {start} is after --end {end}", "swap them")
    require_ended(end, "--end")
    return [start + timedelta(days=k) for k in range((end - start).days + 1)]


def backfill(settings: Settings, start: date, end: date) -> BackfillResult:
    from batch import features_30d
    from batch.reconcile import reconcile

    days = check_range(start, end)
    result = BackfillResult()
    t0 = time.monotonic()
    for n, day in enumerate(days, start=1):
        if not (settings.archive_dir / f"dt={day.isoformat()}").is_dir():
            result.skipped.append(day.isoformat())
            log.warning("%s: no archive, skipped (%d/%d)", day, n, len(days))
            continue
        r = reconcile(settings, day)
        features_30d.run(settings, day)
        if not r.complete:
            result.incomplete[day.isoformat()] = ", ".join(r.missing_hours + r.missing_days)
        result.done.append(day.isoformat())
        log.info("%s done (%d/%d, %.0fs)", day, n, len(days), time.monotonic() - t0)
    result.seconds = time.monotonic() - t0
    return result
