"""The daily partitions every day-scoped asset shares (UTC days)."""

from __future__ import annotations

from datetime import date

from dagster import DailyPartitionsDefinition

from common.settings import Settings


def daily_partitions(settings: Settings) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(start_date=settings.orchestration.start_date.isoformat(), timezone="UTC")


def days_of(context) -> list[date]:
    """The days an asset run covers: one partition, or a range under a single-run backfill."""
    window = context.partition_time_window
    first, last = window.start.date(), window.end.date()
    return [date.fromordinal(d) for d in range(first.toordinal(), last.toordinal())]


def run_days(context) -> list[date]:
    """The days of the run an asset check belongs to, from its partition tags."""
    tags = context.run.tags
    if "dagster/partition" in tags:
        return [date.fromisoformat(tags["dagster/partition"])]
    first = date.fromisoformat(tags["dagster/asset_partition_range_start"])
    last = date.fromisoformat(tags["dagster/asset_partition_range_end"])
    return [date.fromordinal(d) for d in range(first.toordinal(), last.toordinal() + 1)]
