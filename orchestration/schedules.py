"""The daily schedules: the batch layer for yesterday, and tiering."""

from datetime import timedelta

from dagster import (
    DefaultScheduleStatus,
    JobDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from common.settings import Settings


def daily_batch_schedule(settings: Settings, job: JobDefinition) -> ScheduleDefinition:
    delay = settings.orchestration.reconcile_delay_minutes

    @schedule(
        job=job,
        cron_schedule=f"{delay % 60} {delay // 60} * * *",
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Every day, {delay} min after midnight UTC (time for late events): reconcile, "
        "30-day features, checks and publication for the day before.",
    )
    def daily_batch(context: ScheduleEvaluationContext) -> RunRequest:
        day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
        return RunRequest(run_key=day, partition_key=day)

    return daily_batch


def daily_tiering_schedule(settings: Settings, job: JobDefinition) -> ScheduleDefinition:
    at = (settings.orchestration.reconcile_delay_minutes + 120) % (24 * 60)  # after the day's batch

    @schedule(
        job=job,
        cron_schedule=f"{at % 60} {at // 60} * * *",
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Every day: move feature days older than {settings.tiering.hot_days} days to object storage.",
    )
    def daily_tiering(context: ScheduleEvaluationContext) -> RunRequest:
        day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
        return RunRequest(run_key=day, partition_key=day)

    return daily_tiering
