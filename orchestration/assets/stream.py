"""The speed layer: the supervised stream job and the raw-event archive it writes, with the
stream_deploy job and the supervisor sensor that requests it."""

import uuid
from functools import partial
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AssetSelection,
    BackfillPolicy,
    Config,
    Definitions,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    define_asset_job,
)

from common.repository import load_features
from common.settings import Settings
from orchestration.partitions import daily_partitions, days_of
from orchestration.resources import FlinkResource, PlatformResource
from orchestration.sensors import stream_supervisor_sensor
from streaming.deployment import definition_fingerprint

OWNERS = ["team:streaming"]


class StreamJobConfig(Config):
    """Empty `replay`: deploy the long-running Kafka job. Files in `replay`: run the same job
    over them as a bounded stream instead, until every window has fired (demo, speed-layer backfill)."""

    replay: list[str] = []
    format: str = "jsonl"
    parallelism: int = 0  # deploy with this parallelism (a rescale); 0: as deployed or STREAM__PARALLELISM


def _replay(settings: Settings, config: StreamJobConfig) -> MaterializeResult:
    from orchestration.online_store import republish_batch
    from streaming.job import FileSource
    from streaming.runner import run_job
    from streaming.staging import stage_files

    staged = settings.staging_dir / "runs" / f"replay-{uuid.uuid4().hex[:8]}.csv"
    dead = settings.dead_letter_dir / "parse"
    attributes = load_features(settings).event_attributes
    stage = stage_files(config.format, [Path(p) for p in config.replay], staged, dead, attributes)
    summary = run_job(settings, FileSource(stage.path), stage, on_store_lost=partial(republish_batch, settings))
    return MaterializeResult(
        metadata={
            "mode": "replay",
            "files": ", ".join(config.replay),
            "events read": summary.events_in,
            "dead letters (unparseable)": summary.parse_dead_letters,
            "dead letters (rejected by rules)": summary.stream_dead_letters,
            "late events": summary.late,
            "events/s": round(summary.rate),
            **{f"rows in {t}": n for t, n in summary.table_rows.items()},
            "users in Redis": summary.redis_keys,
        }
    )


def stream_job_asset(settings: Settings) -> AssetsDefinition:
    @asset(
        group_name="stream",
        owners=OWNERS,
        kinds={"flink", "kafka"},
        code_version=definition_fingerprint(settings),
        description="The PyFlink job computing every streaming feature from the Kafka events topic. "
        "Materializing deploys it: nothing when this definition already runs, a restart from the latest "
        "checkpoint when it died, a stop-with-savepoint and restore when the feature definitions or the "
        "parallelism changed.",
    )
    def stream_job(context: AssetExecutionContext, config: StreamJobConfig, flink: FlinkResource) -> MaterializeResult:
        if config.replay:
            return _replay(flink.settings(), config)
        result = flink.deployment().deploy(parallelism=config.parallelism or None)
        st = result.status
        context.log.info("stream job %s: %s (job %s)", result.action, st.state, st.job_id)
        return MaterializeResult(
            metadata={
                "mode": "deployment",
                "action": result.action,
                "state": st.state,
                "job id": st.job_id or "",
                "Flink REST": MetadataValue.url(f"http://{st.rest}"),
                "definition": st.fingerprint,
                "restored from": st.restored_from or "",
                "savepoint": result.savepoint or "",
                "parallelism": st.parallelism or 0,
                "log": MetadataValue.path(st.log or ""),
            }
        )

    return stream_job


def archive_asset(settings: Settings) -> AssetsDefinition:
    @asset(
        group_name="stream",
        owners=OWNERS,
        kinds={"json"},
        deps=["stream_job"],
        partitions_def=daily_partitions(settings),
        backfill_policy=BackfillPolicy.single_run(),
        description="The raw-event archive of one day, written by the stream job (every accepted event, "
        "late ones flagged). Materializing observes it: which hours exist and how many events.",
    )
    def archive(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:
        from common import archive as layout
        from streaming.runner import count_json_lines

        s = platform.settings()
        days = days_of(context)
        absent = [d.isoformat() for d in days if not layout.is_archived(s, d)]
        if absent:
            raise Failure(
                f"no archived events for {', '.join(absent)} under {s.archive_dir}: the stream job has not seen "
                "those days"
            )
        events = late = hours = 0
        gaps: list[str] = []
        for d in days:
            n, n_late = count_json_lines(layout.day_dir(s, d), "late")
            events, late = events + n, late + n_late
            hours += len(layout.hours(s, d))
            gaps += layout.missing_hours(s, d)
        return MaterializeResult(
            metadata={
                "path": MetadataValue.path(str(s.archive_dir)),
                "days": f"{days[0]}..{days[-1]}",
                "events": events,
                "late events": late,
                "hours present": hours,
                "hours missing (between a day's first and last)": ", ".join(gaps) or "none",
            }
        )

    return archive


def build_defs(settings: Settings) -> Definitions:
    stream_job = stream_job_asset(settings)
    deploy = define_asset_job("stream_deploy", selection=AssetSelection.assets(stream_job))
    return Definitions(
        assets=[stream_job, archive_asset(settings)],
        jobs=[deploy],
        sensors=[stream_supervisor_sensor(settings, deploy)],
    )
