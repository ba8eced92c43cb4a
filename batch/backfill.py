"""Backfill a date range: reconcile and 30-day features for every day, one Spark session.
Each day replaces itself exactly, so a range can be re-run or resumed at any day."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from batch import features_30d
from batch.archive import load_events
from batch.publish import publish_online
from batch.reconcile import STATE_DAYS, load_clickhouse, reconcile_days
from batch.spark import spark_session
from batch.stores import reach_stores
from common import archive
from common.errors import PlatformError
from common.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class BackfillResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # no archive for the day
    lead_in: list[str] = field(default_factory=list)  # no archive, but windows reaching into the next day
    incomplete: dict[str, str] = field(default_factory=dict)  # day -> gaps
    seconds: float = 0.0


def check_range(start: date, end: date) -> list[date]:
    if start > end:
        raise PlatformError(f"the range is reversed: --start {start} is after --end {end}", "swap them")
    archive.require_ended(end, "--end")
    return [start + timedelta(days=k) for k in range((end - start).days + 1)]


def backfill(settings: Settings, start: date, end: date, publish: bool = True) -> BackfillResult:
    """Reconcile and compute the 30-day features for every archived day of the range: the
    archive of the range (and the days its first day needs) is read and checked once, each
    feature is one Spark query over the whole range, then the stores are loaded day by day."""
    days = check_range(start, end)
    reach_stores(settings, online=publish)
    result = BackfillResult()
    t0 = time.monotonic()
    archived = [d for d in days if archive.is_archived(settings, d)]
    result.skipped = [d.isoformat() for d in days if d not in archived]
    if not archived:
        result.seconds = time.monotonic() - t0
        return result
    spark = spark_session(settings)
    first = archived[0] - timedelta(days=STATE_DAYS - 1)  # state features read 7 days, windows 1 day after
    source = load_events(spark, settings, [first + timedelta(days=k) for k in range((end - first).days + 2)], [])
    try:
        reconciled = reconcile_days(spark, settings, archived, source)
        log.info("reconciled %d day(s) into the lake (%.0fs)", len(archived), time.monotonic() - t0)
    finally:
        spark.catalog.clearCache()
    rolling = features_30d.compute_and_write(spark, settings, archived)
    log.info("30-day features of %d day(s) in the lake (%.0fs)", len(archived), time.monotonic() - t0)
    # the stores, a day at a time (lead-in days among them): each day is whole once loaded
    for n, (day, r) in enumerate(reconciled.items(), start=1):
        load_clickhouse(settings, r)
        if r.lead_in:
            result.lead_in.append(day.isoformat())
        else:
            features_30d.load_clickhouse(settings, rolling[day])
            if publish:
                publish_online(settings, day)
            result.done.append(day.isoformat())
        if not r.complete:
            result.incomplete[day.isoformat()] = (
                "no archive" if r.lead_in else ", ".join(r.missing_hours + r.missing_days)
            )
        log.info("%s loaded (%d/%d, %.0fs)", day, n, len(reconciled), time.monotonic() - t0)
    result.seconds = time.monotonic() - t0
    return result
