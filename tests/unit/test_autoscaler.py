"""The autoscaler's decision (streaming/autoscaler.py) on loads with known answers."""

from __future__ import annotations

from common.settings import OrchestrationSettings
from streaming.autoscaler import Load, decide, due, load_of, partitions_read
from streaming.flink_metrics import JobMetrics, Sample

S = OrchestrationSettings(target_utilization=0.7, utilization_boundary=0.2, catch_up_s=100, rescale_cooldown_s=600)


def test_a_backlog_the_job_cannot_read_in_time_needs_more_subtasks():
    # 1 subtask reads 1,000 events/s fully busy; 500/s arrive and 50,000 wait: 1,000/s needed
    d = decide(Load(parallelism=1, processing_rate=1000, busy=1.0, backlog=50_000, input_rate=500), S, partitions=4)
    assert (d.parallelism, d.current, d.rescale) == (2, 1, True)
    assert round(d.utilization, 2) == 1.0


def test_bounded_by_the_partitions_and_the_settings():
    load = Load(parallelism=1, processing_rate=1000, busy=1.0, backlog=500_000, input_rate=500)
    assert decide(load, S, partitions=2).parallelism == 2
    assert decide(load, S.model_copy(update={"max_parallelism": 3}), partitions=8).parallelism == 3
    idle = Load(parallelism=4, processing_rate=10, busy=0.01, backlog=0, input_rate=10)
    assert decide(idle, S.model_copy(update={"min_parallelism": 2}), partitions=8).parallelism == 2


def test_an_idle_job_scales_down_and_a_busy_one_within_the_band_stays():
    # 4 subtasks at 10% busy read 400/s: capacity 1,000/s each; 400/s need one subtask
    d = decide(Load(parallelism=4, processing_rate=400, busy=0.1, backlog=0, input_rate=400), S, partitions=8)
    assert d.parallelism == 1 and "1 wanted" in d.reason
    # 2 subtasks at 75% busy: utilisation 0.75, within 0.7 ± 0.2 though 3 would fit the target better
    d = decide(Load(parallelism=2, processing_rate=1500, busy=0.75, backlog=0, input_rate=1500), S, partitions=8)
    assert not d.rescale and "within the target band" in d.reason


def test_no_rescale_in_the_cool_down_nor_without_a_measured_rate():
    load = Load(parallelism=1, processing_rate=1000, busy=1.0, backlog=50_000, input_rate=500)
    d = decide(load, S, partitions=4)
    assert d.rescale and not due(d, S, since_start_s=601)  # autoscaling off: recorded, not done
    auto = S.model_copy(update={"autoscale": True})
    assert not due(d, auto, since_start_s=60) and due(d, auto, since_start_s=601)
    unmeasured = Load(parallelism=1, processing_rate=1000, busy=1.0, backlog=50_000, input_rate=None)
    assert not decide(unmeasured, S, partitions=4).rescale


def _sample(metric: str, value: float, task: str, subtask: int, operator: str = "") -> Sample:
    labels = {"job_id": "j", "job_name": "n", "task_id": task, "task_name": task, "subtask_index": str(subtask)}
    return Sample(f"flink_{metric}", labels, value, operator, metric)


def test_load_is_read_from_the_jobs_metrics():
    src = "Source__KafkaSource-default_catalog_default_database_kafka_events"
    records = "Source__KafkaSource-default_catalog_default_database_kafka_records"

    def job(read: float, pending: float) -> JobMetrics:
        samples = []
        for i in (0, 1):
            samples += [
                _sample("numRecordsOut", read / 2, "a", i, src),
                _sample("numRecordsOutPerSecond", 300, "a", i, src),
                _sample("pendingRecords", pending / 2, "a", i, src),
                _sample("numRecordsOut", read / 2, "r", i, records),  # the second read: not events
                _sample("pendingRecords", 99, "r", i, records),
                _sample("busyTimeMsPerSecond", 200 + 400 * i, "a", i),
                _sample("busyTimeMsPerSecond", 900, "b", i),
            ]
        return JobMetrics("j", "n", "RUNNING", samples)

    first, kept = load_of(job(1000, 4000), None, now=100.0)
    assert first.input_rate is None and first.parallelism == 2 and first.backlog == 4000
    assert first.processing_rate == 600 and first.busy == 0.9
    # 10 s later: 6,000 more read, the backlog down by 1,000: 5,000 arrived, 500/s
    second, _ = load_of(job(7000, 3000), kept, now=110.0)
    assert second.input_rate == 500
    # 5 s later Flink's REST API may still serve the first snapshot: no rate, and the first kept
    soon, kept_soon = load_of(job(1000, 4000), kept, now=105.0)
    assert soon.input_rate is None and kept_soon == kept
    restarted, _ = load_of(job(10, 3000), kept, now=120.0)  # counters reset: unknown
    assert restarted.input_rate is None
    offsets = [
        Sample("x", {"task_id": "a", "subtask_index": str(p % 2), "topic": "lf.events", "partition": str(p)}, 5, src)
        for p in range(3)
    ]
    assert partitions_read(JobMetrics("j", "n", "RUNNING", offsets)) == 3
