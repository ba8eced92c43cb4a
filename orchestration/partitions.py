"""The daily partitions every day-scoped asset shares (UTC days)."""

from __future__ import annotations

from datetime import date, timedelta

from dagster import DailyPartitionsDefinition

from common.settings import Settings


def daily_partitions(settings: Settings) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(start_date=settings.orchestration.start_date.isoformat(), timezone="UTC")


def _days(first: date, last: date) -> list[date]:
    return [date.fromordinal(d) for d in range(first.toordinal(), last.toordinal() + 1)]


def days_of(context) -> list[date]:
    """The days an asset run covers: one partition, or a range under a single-run backfill."""
    window = context.partition_time_window  # its end is the midnight after the last day
    return _days(window.start.date(), window.end.date() - timedelta(days=1))


def run_days(context) -> list[date]:
    """The days of the run an asset check belongs to, from its partition tags."""
    tags = context.run.tags
    if "dagster/partition" in tags:
        return [date.fromisoformat(tags["dagster/partition"])]
    return _days(
        date.fromisoformat(tags["dagster/asset_partition_range_start"]),
        date.fromisoformat(tags["dagster/asset_partition_range_end"]),
    )
