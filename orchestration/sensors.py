"""The stream supervisor: observes the running job and restarts it when it dies."""

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
from streaming.deployment import StreamStatus


def observation(st: StreamStatus) -> AssetObservation:
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
    return AssetObservation(asset_key="stream_job", metadata=metadata)


def stream_supervisor_sensor(settings: Settings, deploy_job: JobDefinition) -> SensorDefinition:
    @sensor(
        job=deploy_job,
        minimum_interval_seconds=settings.orchestration.supervise_interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description="Polls the stream job (Flink REST API, Kafka lag), records an observation of "
        "stream_job, and requests a redeployment (restart from the latest checkpoint) when it died.",
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
        events = [observation(st)]
        if st.state == "RUNNING":
            events.append(freshness_evaluation(flink.settings()))
        return SensorResult(run_requests=runs, asset_events=events)

    return stream_supervisor
