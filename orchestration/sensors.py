"""The stream supervisor: observes the running job, restarts it when it dies, and rescales it
on backlog when ORCHESTRATION__AUTOSCALE is on."""

import json
import time

import requests
from dagster import (
    AssetObservation,
    DefaultSensorStatus,
    JobDefinition,
    MetadataValue,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from common.settings import Settings
from orchestration.checks import freshness_evaluation
from orchestration.resources import FlinkResource
from streaming.autoscaler import Decision
from streaming.deployment import StreamStatus


def observation(st: StreamStatus, decision: Decision | None = None) -> AssetObservation:
    cp = st.last_checkpoint or {}
    metadata = {
        "state": st.state,
        "job id": st.job_id or "",
        "Flink REST": MetadataValue.url(f"http://{st.rest}"),
        "last checkpoint": cp.get("path", "none"),
        "last checkpoint id": cp.get("id", -1),
        "backpressure": st.backpressure or "unknown",
        "records out of the sources": st.source_records_out if st.source_records_out is not None else -1,
        "records into the sinks": st.sink_records_in if st.sink_records_in is not None else -1,
        "Kafka lag (events)": st.kafka_lag if st.kafka_lag is not None else -1,
    }
    # numbers the asset page plots over time; an unknown one is left out (a gap in the plot)
    progress = {
        "events/s": st.events_per_s,
        "event-time lag (s)": st.event_time_lag_s,
        "online freshness (s)": st.online_freshness_s,
        "last checkpoint age (s)": st.last_checkpoint_age_s,
    }
    metadata |= {k: MetadataValue.float(round(v, 3)) for k, v in progress.items() if v is not None}
    if cp.get("at_ms"):
        metadata["last checkpoint at"] = MetadataValue.timestamp(cp["at_ms"] / 1000)
    if decision:
        metadata["parallelism"] = MetadataValue.int(decision.current)
        metadata["needed parallelism"] = MetadataValue.int(decision.parallelism)
        metadata["autoscaler"] = decision.reason
    return AssetObservation(asset_key="stream_job", metadata=metadata)


def autoscale(settings: Settings, st: StreamStatus, cursor: str | None) -> tuple[Decision | None, str | None]:
    """The autoscaler's decision on the running job (None until its metrics are served), and
    the cursor that keeps this poll for the next one (the input rate is measured between two)."""
    from streaming.autoscaler import assess
    from streaming.deployment import STREAM_PIPELINE
    from streaming.flink_metrics import FlinkReader
    from streaming.flink_rest import FlinkRest

    try:
        job = FlinkReader(FlinkRest(st.rest or ""), STREAM_PIPELINE).job()
    except requests.RequestException:
        return None, cursor
    if job is None or not job.samples:
        return None, None
    kept = json.loads(cursor) if cursor else {}
    previous = (kept["t"], kept["arrived"]) if kept.get("job") == job.job_id else None
    decision, (t, arrived) = assess(job, settings, previous, time.time())
    return decision, json.dumps({"job": job.job_id, "t": t, "arrived": arrived})


def rescale_request(settings: Settings, st: StreamStatus, decision: Decision) -> RunRequest | None:
    """A run of stream_deploy that rescales the job, when the autoscaler is on and it is due."""
    from streaming.autoscaler import due

    if not due(decision, settings.orchestration, time.time() - (st.started_at or 0)):
        return None
    return RunRequest(
        run_key=f"rescale-{st.started_at}-to-{decision.parallelism}",  # once per running instance
        run_config={"ops": {"stream_job": {"config": {"parallelism": decision.parallelism}}}},
        tags={"lambda-features/reason": f"rescale {decision.current} -> {decision.parallelism}"},
    )


def stream_supervisor_sensor(settings: Settings, deploy_job: JobDefinition) -> SensorDefinition:
    @sensor(
        job=deploy_job,
        minimum_interval_seconds=settings.orchestration.supervise_interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description="Polls the stream job (Flink REST API, Kafka lag), records an observation of "
        "stream_job with the parallelism it needs, and requests a redeployment: a restart from the latest "
        "checkpoint when it died, a rescale through a savepoint when ORCHESTRATION__AUTOSCALE is on.",
    )
    def stream_supervisor(context: SensorEvaluationContext, flink: FlinkResource):
        st = flink.deployment().status()
        if st.state == "NOT_DEPLOYED":
            return SkipReason("the stream job is not deployed: materialize stream_job")
        if st.state == "STOPPED":
            return SensorResult(asset_events=[observation(st)], skip_reason="the stream job was stopped on purpose")
        runs = []
        if st.needs_restart:
            context.log.warning("stream job is %s: requesting a restart from its latest checkpoint", st.state)
            runs.append(
                RunRequest(
                    run_key=f"restart-after-{st.started_at}",  # one restart per dead instance
                    tags={"lambda-features/reason": f"stream job {st.state}"},
                )
            )
        decision, cursor = None, None
        if st.state == "RUNNING":
            decision, cursor = autoscale(flink.settings(), st, context.cursor)
            if decision and not runs and (rescale := rescale_request(flink.settings(), st, decision)):
                context.log.info("rescaling the stream job: %s", decision.reason)
                runs.append(rescale)
        events = [observation(st, decision)]
        if st.state == "RUNNING":
            events.append(freshness_evaluation(flink.settings()))
        return SensorResult(run_requests=runs, asset_events=events, cursor=cursor)

    return stream_supervisor
