"""How many parallel subtasks the stream job needs, from its load, as Flink's autoscaler decides:
each subtask's true capacity is the rate it reads divided by the share of time its busiest task
is busy; the job must carry the input rate plus its backlog spread over the catch-up time, at
the target utilisation. Bounded by the settings and the events topic's partitions; no change
while the utilisation stays within the target's band, nor during the cool-down after a start."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from common.settings import OrchestrationSettings, Settings
from streaming.flink_metrics import JobMetrics, is_event_source

MIN_BUSY = 0.01  # below this a subtask's busy share says too little about its capacity
# Flink's REST API serves metrics it fetched up to this long ago (metrics.fetcher.update-interval,
# 10 s by default): two polls closer than that can read one snapshot twice, a rate of 0
MIN_RATE_SPAN_S = 10.0


@dataclass(frozen=True)
class Load:
    """One observation of the running job."""

    parallelism: int
    processing_rate: float  # events/s the job reads now
    busy: float  # 0..1: the busiest task's mean share of time busy
    backlog: float  # events on the topic the job has not read yet
    input_rate: float | None = None  # events/s arriving on the topic (None: not measured yet)


@dataclass(frozen=True)
class Decision:
    parallelism: int  # what the job needs, within the bounds
    current: int
    reason: str
    utilization: float | None = None  # of the current parallelism, at the needed rate

    @property
    def rescale(self) -> bool:
        return self.parallelism != self.current


def decide(load: Load, s: OrchestrationSettings, partitions: int) -> Decision:
    """The parallelism the load needs, and why."""
    hi = max(1, min(s.max_parallelism, partitions))
    lo = min(s.min_parallelism, hi)
    current = load.parallelism
    if load.input_rate is None or load.processing_rate <= 0:
        return Decision(current, current, "no rate measured yet")
    capacity = load.processing_rate / max(load.busy, MIN_BUSY) / current  # events/s per subtask
    needed_rate = load.input_rate + load.backlog / s.catch_up_s
    utilization = needed_rate / (capacity * current)
    wanted = min(hi, max(lo, math.ceil(needed_rate / (capacity * s.target_utilization))))
    why = (
        f"{needed_rate:,.0f} events/s needed ({load.input_rate:,.0f} in, backlog {load.backlog:,.0f} "
        f"over {s.catch_up_s:.0f} s), {capacity:,.0f} events/s per subtask"
    )
    if wanted == current:
        return Decision(current, current, f"{why}: {current} fit", utilization)
    if abs(utilization - s.target_utilization) <= s.utilization_boundary and lo <= current <= hi:
        return Decision(current, current, f"{why}: utilisation {utilization:.0%} within the target band", utilization)
    return Decision(wanted, current, f"{why}: {wanted} wanted", utilization)


def due(decision: Decision, s: OrchestrationSettings, since_start_s: float) -> bool:
    """Whether to rescale now: autoscaling on, another parallelism needed, the cool-down over."""
    return s.autoscale and decision.rescale and since_start_s >= s.rescale_cooldown_s


def partitions_read(job: JobMetrics) -> int | None:
    """The partitions the job's event source reads (from its per-partition offsets)."""
    parts = {
        (x.labels["topic"], x.labels["partition"])
        for x in job.samples
        if "partition" in x.labels and is_event_source(x.operator)
    }
    return len(parts) or None


def assess(
    job: JobMetrics, s: Settings, previous: tuple[float, float] | None, now: float
) -> tuple[Decision, tuple[float, float]]:
    """The decision on one poll of the running job, and what to keep for the next poll."""
    load, kept = load_of(job, previous, now)
    return decide(load, s.orchestration, partitions_read(job) or s.kafka.partitions), kept


def load_of(job: JobMetrics, previous: tuple[float, float] | None, now: float) -> tuple[Load, tuple[float, float]]:
    """The load from one poll of the job's metrics, and what to keep for the next poll: (time,
    events arrived so far = read + pending). The input rate is the growth of the arrivals since
    the previous poll (None on the first, after a restart reset the counters, and when the
    previous poll is under MIN_RATE_SPAN_S old: then it is kept for the next)."""
    subtasks: dict[str, set[str]] = defaultdict(set)
    busy: dict[str, list[float]] = defaultdict(list)
    backlog = 0.0
    for x in job.samples:
        task = x.labels.get("task_id")
        if task is None:
            continue
        subtasks[task].add(x.labels["subtask_index"])
        if x.metric == "busyTimeMsPerSecond" and not x.operator:
            busy[task].append(x.value / 1000)
        elif x.metric == "pendingRecords" and is_event_source(x.operator):
            backlog += x.value
    arrived = job.events_in + backlog
    rate = None
    kept = (now, arrived)
    if previous and arrived >= previous[1]:
        if now - previous[0] < MIN_RATE_SPAN_S:
            kept = previous
        else:
            rate = (arrived - previous[1]) / (now - previous[0])
    load = Load(
        parallelism=max((len(v) for v in subtasks.values()), default=1),
        processing_rate=job.events_in_per_s,
        busy=max((sum(v) / len(v) for v in busy.values()), default=0.0),
        backlog=backlog,
        input_rate=rate,
    )
    return load, kept
