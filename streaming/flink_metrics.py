"""The stream job's metrics read from Flink's REST API, for decisions: the autoscaler's (the
supervisor's and the exporter's) and `stream status`. Time series come from Flink's own
Prometheus reporter instead (docs/operations.md). The samples carry the names that reporter
gives (`flink_` + scope + name, other characters as `_`), so one vocabulary serves both."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

from streaming.flink_rest import FlinkRest
from streaming.job import EVENTS_TABLE

JOBMANAGER_METRICS = ("numRunningJobs", "numRegisteredTaskManagers", "taskSlotsAvailable", "taskSlotsTotal")
JOB_METRICS = (
    "uptime",
    "downtime",
    "numRestarts",
    "lastCheckpointDuration",
    "lastCheckpointSize",
    "lastCheckpointFullSize",
    "lastCheckpointCompletedTimestamp",
    "lastCheckpointRestoreTimestamp",
    "lastCompletedCheckpointId",
    "numberOfCompletedCheckpoints",
    "numberOfFailedCheckpoints",
    "numberOfInProgressCheckpoints",
    "totalNumberOfCheckpoints",
)
TASK_METRICS = (
    "backPressuredTimeMsPerSecond",
    "busyTimeMsPerSecond",
    "idleTimeMsPerSecond",
    "numRecordsIn",
    "numRecordsOut",
    "numRecordsInPerSecond",
    "numRecordsOutPerSecond",
    "currentInputWatermark",
)
SOURCE_METRICS = (
    "numRecordsIn",
    "numRecordsOut",
    "numRecordsOutPerSecond",
    "numRecordsInErrors",
    "currentOutputWatermark",
    "watermarkLag",
    "currentEmitEventTimeLag",
    "currentFetchEventTimeLag",
    "pendingRecords",
    "sourceIdleTime",
    "KafkaSourceReader.KafkaConsumer.records-lag-max",
    "KafkaSourceReader.KafkaConsumer.records-consumed-rate",
    "KafkaSourceReader.commitsSucceeded",
    "KafkaSourceReader.commitsFailed",
)
SINK_METRICS = ("numRecordsIn", "numRecordsOut", "numRecordsOutErrors", "numRecordsSendErrors", "currentSendTime")
# per-partition offsets of the Kafka source: topic and partition become labels, as Flink's reporter does
_PARTITION = re.compile(r"^KafkaSourceReader\.topic\.([^.]+)\.partition\.(\d+)\.(currentOffset|committedOffset)$")
_INVALID = re.compile(r"[^a-zA-Z0-9:_]")
IDS_TTL_S = 60  # how long a vertex's list of metric ids is reused (new partitions add some)


def prometheus_name(scope: str, metric: str) -> str:
    return f"flink_{scope}_{_INVALID.sub('_', metric)}"


@dataclass(frozen=True)
class Sample:
    name: str  # the Prometheus name
    labels: dict[str, str]
    value: float
    operator: str = ""  # the operator of an operator-scope metric, as Flink names it in ids
    metric: str = ""  # Flink's own metric name


def _is_source(operator: str) -> bool:
    return operator.startswith("Source__")


def is_event_source(operator: str) -> bool:
    """The source of the events (not the catalogue's two reads of its topic)."""
    return _is_source(operator) and operator.endswith(EVENTS_TABLE)


def _is_feature_sink(operator: str) -> bool:
    """The Kafka writers of the feature changelogs (not the file writers of the archive and dead letters)."""
    return operator.endswith("Writer") and not operator.endswith("StreamingFileWriter")


def _wanted(metric_id: str) -> tuple[str, str, dict[str, str]] | None:
    """(operator, metric, extra labels) of a vertex metric id `<subtask>.[<operator>.]<metric>` we export."""
    _, _, rest = metric_id.partition(".")
    if rest in TASK_METRICS:
        return "", rest, {}
    operator, _, metric = rest.partition(".")
    if _is_source(operator):
        if metric in SOURCE_METRICS:
            return operator, metric, {}
        m = _PARTITION.match(metric)
        if m:
            return operator, f"KafkaSourceReader.topic.partition.{m[3]}", {"topic": m[1], "partition": m[2]}
    elif _is_feature_sink(operator) and metric in SINK_METRICS:
        return operator, metric, {}
    return None


def _complete(wanted: list[tuple[str, str, str, dict[str, str]]], has_source: bool) -> bool:
    """Whether a vertex's list of metric ids can be reused for IDS_TTL_S. Flink's REST API lists
    a vertex's metrics only once it has fetched them (the first answer is empty), and a Kafka
    source registers its consumer's metrics only once it has polled: a list taken before either
    would hide those metrics for a minute."""
    if not wanted:
        return False
    polled = any(metric.startswith("KafkaSourceReader.KafkaConsumer.") for _, _, metric, _ in wanted)
    return polled or not has_source


def _number(value: str) -> float | None:
    try:
        v = float(value)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


@dataclass
class JobMetrics:
    """One poll of a job: every exported sample, and what the platform derives from them."""

    job_id: str
    job_name: str
    state: str
    samples: list[Sample] = field(default_factory=list)
    checkpoint_interval_s: float | None = None

    def _sum(self, metric: str, where) -> float:
        return sum(s.value for s in self.samples if s.metric == metric and s.operator and where(s.operator))

    @property
    def events_in(self) -> float:
        """Records the Kafka source read (rejected ones included)."""
        return self._sum("numRecordsOut", is_event_source)

    @property
    def events_in_per_s(self) -> float:
        return self._sum("numRecordsOutPerSecond", is_event_source)

    @property
    def feature_changes_out(self) -> float:
        """Rows the job wrote to the feature changelog topics."""
        return self._sum("numRecordsIn", _is_feature_sink)

    @property
    def watermark_ms(self) -> float | None:
        """The job's event-time progress: the lowest watermark its source subtasks emitted."""
        marks = [s.value for s in self.samples if s.metric == "currentOutputWatermark" and s.value > 0]
        return min(marks) if marks else None

    def job_metric(self, name: str) -> float | None:
        return next((s.value for s in self.samples if s.name == prometheus_name("jobmanager_job", name)), None)


class FlinkReader:
    """Reads the metrics of the newest job of a pipeline name; keeps each vertex's metric ids a while."""

    def __init__(self, rest: FlinkRest, pipeline: str) -> None:
        self.rest = rest
        self.pipeline = pipeline
        self._ids: dict[str, tuple[float, list[tuple[str, str, str, dict[str, str]]]]] = {}

    def jobmanager(self) -> list[Sample]:
        values = self.rest.metrics("/jobmanager", list(JOBMANAGER_METRICS))
        return [
            Sample(prometheus_name("jobmanager", k), {}, v, metric=k)
            for k, raw in values.items()
            if (v := _number(raw)) is not None
        ]

    def job(self) -> JobMetrics | None:
        """The pipeline's job and, when it runs, its metrics; None when there is no such job."""
        job = self.rest.job(self.pipeline)
        if not job:
            return None
        jid = job["jid"]
        out = JobMetrics(jid, job["name"], job["state"])
        if job["state"] != "RUNNING":
            return out
        base = {"job_id": jid, "job_name": job["name"]}
        for k, raw in self.rest.metrics(f"/jobs/{jid}", list(JOB_METRICS)).items():
            if (v := _number(raw)) is not None:
                out.samples.append(Sample(prometheus_name("jobmanager_job", k), base, v, metric=k))
        for vertex in self.rest.vertices(jid):
            path = f"/jobs/{jid}/vertices/{vertex['id']}"
            wanted = self._wanted_ids(path, vertex["name"].startswith("Source:"))
            values = self.rest.metrics(path, [w[0] for w in wanted])
            task = base | {"task_id": vertex["id"], "task_name": vertex["name"]}
            for metric_id, operator, metric, extra in wanted:
                v = _number(values.get(metric_id, ""))
                if v is None:
                    continue
                labels = task | {"subtask_index": metric_id.partition(".")[0]}
                if operator:
                    name = prometheus_name("taskmanager_job_task_operator", metric)
                    labels |= {"operator_name": operator, **extra}
                else:
                    name = prometheus_name("taskmanager_job_task", metric)
                out.samples.append(Sample(name, labels, v, operator, metric))
        interval = self.rest.checkpoint_interval_ms(jid)
        out.checkpoint_interval_s = interval / 1000 if interval and interval > 0 else None
        return out

    def _wanted_ids(self, path: str, has_source: bool) -> list[tuple[str, str, str, dict[str, str]]]:
        cached = self._ids.get(path)
        if cached and time.monotonic() - cached[0] < IDS_TTL_S:
            return cached[1]
        wanted = [(i, *w) for i in self.rest.metric_ids(path) if (w := _wanted(i))]
        self._ids = {
            k: v for k, v in self._ids.items() if k.rsplit("/vertices/", 1)[0] == path.rsplit("/vertices/", 1)[0]
        }
        if _complete(wanted, has_source):
            self._ids[path] = (time.monotonic(), wanted)
        return wanted
