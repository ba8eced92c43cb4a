"""Submitting the stream job to a Flink cluster, and the Kafka source every live run reads."""

from __future__ import annotations

from common.errors import PlatformError
from common.kafka import bootstrap, ensure_topics
from common.services import local_services
from common.settings import Settings
from streaming.deployment import STREAM_PIPELINE
from streaming.job import KafkaSource
from streaming.runner import ensure_feature_topics
from warehouse.schema import create_tables


def kafka_source(settings: Settings, start: str | None = None, stop_offsets: dict[int, int] | None = None):
    """The events topic as the job's source; `stop_offsets` makes it bounded."""
    return KafkaSource(
        topic=settings.kafka.events_topic,
        bootstrap=bootstrap(settings),
        group_id=settings.kafka.group_id,
        start=start or settings.kafka.start,
        start_timestamp_ms=settings.kafka.start_timestamp_ms,
        stop_offsets=stop_offsets,
    )


def submit(settings: Settings, start: str | None = None, restore_from: str | None = None) -> str:
    """Submit the job to the cluster at STREAM__JOBMANAGER and return its job id; `stream load`
    (the loaders) fills the stores from its changelog topics."""
    from streaming.compiled_plan import execute_job
    from streaming.flink_env import create_table_env
    from streaming.job import build_statements

    if not settings.stream.jobmanager:
        raise PlatformError(
            "no Flink cluster given", "pass --jobmanager HOST:PORT or set LAMBDA_FEATURES_STREAM__JOBMANAGER"
        )
    for svc in local_services(settings):
        svc.start()
    ensure_topics(settings, [settings.kafka.events_topic], settings.kafka.partitions)
    ensure_feature_topics(settings)
    create_tables(settings)
    t_env = create_table_env(settings, with_kafka=True, pipeline_name=STREAM_PIPELINE, restore_path=restore_from)
    try:
        stmts = build_statements(t_env, kafka_source(settings, start), settings, "kafka")
        result = execute_job(t_env, stmts, settings.run_dir / f"{STREAM_PIPELINE}.plan.json")
        return result.get_job_client().get_job_id()
    except Exception as e:
        raise PlatformError(
            f"cannot submit to the Flink cluster at {settings.stream.jobmanager}: {str(e).splitlines()[0][:300]}",
            "check that its REST endpoint answers (curl http://HOST:PORT/overview)",
        ) from None
