"""The long-running stream job as a deployment: start it, see how it is, redeploy it when
its definition changes, stop it. Local: a detached `lambda-features stream run` process
(mini-cluster and loaders). Cluster: a job submitted to the JobManager plus local loaders."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from common.errors import PlatformError
from common.services import process_running
from common.settings import ENV_PREFIX, Settings
from streaming.checkpoints import latest_checkpoint
from streaming.flink_rest import FlinkRest

log = logging.getLogger(__name__)

STREAM_PIPELINE = "lambda-features-stream"
REPO = Path(__file__).resolve().parent.parent


def definition_fingerprint(settings: Settings) -> str:
    """What the running job computes: its compiled SQL and the settings that shape its state."""
    from streaming.job import (
        CatalogSource,
        KafkaSource,
        catalog_table_ddl,
        compiled_queries,
        event_columns,
        event_format,
        views,
    )

    # the acceptance rules, how Kafka records are read, and every feature's input filter too;
    # (0, 0) for the accepted times, which move with the job's start and are no part of its definition
    columns = event_columns(settings)
    parts = [json.dumps(event_format((0, 0), columns)), *views(KafkaSource("", "", ""), (0, 0), columns)]
    parts += [
        f"{q.output}: {view}\n" + "".join(f"{v}\n" for v in q.functions) + q.select
        for view, q in compiled_queries(settings)
    ]
    # the catalogue's versioned table (not the broker's address); the joins are in the features' views
    parts.append(catalog_table_ddl(CatalogSource(settings.catalog.topic, "", 0), settings))
    s = settings.stream
    # not the parallelism: a rescale restores the same state with more or fewer subtasks;
    # :g, so 168 and 168.0 (the default, and the same value read from a setting) are one definition
    parts += [str(s.watermark_delay_ms), s.watermark_emit, f"{s.state_ttl_hours:g}"]
    parts += [s.state_backend]  # a checkpoint restores into the backend that wrote it; a savepoint into either
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def kafka_lag(settings: Settings) -> int | None:
    """Events on the topic that the job's consumer group has not committed yet (None: unknown)."""
    from common.kafka import consumer_lag

    try:
        return sum(consumer_lag(settings, settings.kafka.group_id, [settings.kafka.events_topic]).values())
    except Exception:  # lag is informative only; an unreachable broker shows as unknown
        return None


@dataclass
class StreamStatus:
    state: str  # RUNNING, FAILED, ..., NOT_DEPLOYED, DEAD (the local process is gone)
    fingerprint: str
    deployed_fingerprint: str | None = None
    job_id: str | None = None
    rest: str | None = None
    pid: int | None = None
    last_checkpoint: dict | None = None
    source_records_out: int | None = None
    sink_records_in: int | None = None
    backpressure: str | None = None
    kafka_lag: int | None = None
    events_per_s: float | None = None  # read by the sources, now
    event_time_lag_s: float | None = None  # now minus the watermark
    last_checkpoint_age_s: float | None = None
    online_freshness_s: float | None = None  # now minus the newest event time in the online store
    restored_from: str | None = None
    started_at: float | None = None
    parallelism: int | None = None  # as deployed
    log: str | None = None

    @property
    def running(self) -> bool:
        return self.state in ("RUNNING", "CREATED", "INITIALIZING", "RESTARTING", "STARTING")

    @property
    def needs_restart(self) -> bool:
        """Deployed once, and now neither running nor stopped on purpose."""
        return self.deployed_fingerprint is not None and not self.running and self.state != "STOPPED"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class DeployResult:
    action: str  # unchanged, started, restarted, redeployed, rescaled
    status: StreamStatus
    savepoint: str | None = None


class StreamDeployment:
    """The stream job of these settings, locally or on the configured Flink cluster."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state_file = settings.run_dir / "stream-job.json"
        self.log_file = settings.home / "logs" / "stream-job.log"

    @property
    def rest_address(self) -> str:
        return self.settings.stream.jobmanager or f"127.0.0.1:{self.settings.stream.rest_port}"

    def _state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _save(self, **state: object) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=2))

    @staticmethod
    def _alive(pid: int | None) -> bool:
        return bool(pid) and process_running(pid)

    def status(self, with_lag: bool = True) -> StreamStatus:
        state = self._state()
        st = StreamStatus(
            state="NOT_DEPLOYED",
            fingerprint=definition_fingerprint(self.settings),
            deployed_fingerprint=state.get("fingerprint"),
            rest=self.rest_address,
            pid=state.get("pid"),
            restored_from=state.get("restored_from"),
            started_at=state.get("started_at"),
            parallelism=state.get("parallelism"),
            log=str(self.log_file),
        )
        if state.get("stopped"):
            st.state = "STOPPED"
        rest = FlinkRest(self.rest_address)
        local = not self.settings.stream.jobmanager
        if local and state and not self._alive(st.pid):
            st.state = "STOPPED" if state.get("stopped") else "DEAD"
        elif rest.reachable():
            job = rest.job(STREAM_PIPELINE)
            if job:
                st.job_id, st.state = job["jid"], job["state"] if not state.get("stopped") else "STOPPED"
                try:
                    if st.running:
                        st.last_checkpoint = rest.last_checkpoint(job["jid"])
                        st.source_records_out, st.sink_records_in, st.backpressure = rest.throughput(job["jid"])
                        if with_lag:
                            self._progress(rest, st)
                except requests.RequestException:
                    pass  # statistics of a job that is just starting are not served yet
        elif local and state:
            st.state = "STARTING"  # the process is alive, its mini-cluster not up yet
        if with_lag and st.running:
            st.kafka_lag = kafka_lag(self.settings)
            st.online_freshness_s = self._online_freshness()
        return st

    def _progress(self, rest: FlinkRest, st: StreamStatus) -> None:
        """Events/s, event-time lag and checkpoint age of the running job, from its metrics."""
        from streaming.flink_metrics import FlinkReader

        job = FlinkReader(rest, STREAM_PIPELINE).job()
        if job is None or not job.samples:
            return
        now = time.time()
        st.events_per_s = job.events_in_per_s
        if job.watermark_ms is not None:
            st.event_time_lag_s = now - job.watermark_ms / 1000
        if st.last_checkpoint:
            st.last_checkpoint_age_s = now - st.last_checkpoint["at_ms"] / 1000

    def _online_freshness(self) -> float | None:
        from common.redis_store import get_redis, newest_online_event_ms

        try:
            newest = newest_online_event_ms(get_redis(self.settings), self.settings)
        except PlatformError:
            return None
        return time.time() - newest / 1000 if newest is not None else None

    def parallelism(self, requested: int | None = None) -> int:
        """What the job is to run with: as requested, else as deployed when the autoscaler
        chooses it (ORCHESTRATION__AUTOSCALE), else STREAM__PARALLELISM."""
        deployed = self._state().get("parallelism")
        if requested:
            return requested
        if self.settings.orchestration.autoscale and deployed:
            return deployed
        return self.settings.stream.parallelism

    def deploy(self, wait_s: float = 180, parallelism: int | None = None, fresh: bool = False) -> DeployResult:
        """Make the current definition run with its parallelism: nothing when it already does, a
        restart from the latest checkpoint when the job died, a stop-with-savepoint and restore
        when the definition or the parallelism changed (`parallelism`: a rescale to it).
        fresh=True (or fresh_next() before): start with no state at all, the savepoint taken
        all the same (a changed feature whose operators keep their IDs would get its old state back)."""
        st = self.status(with_lag=False)
        wanted = self.parallelism(parallelism)
        fresh = fresh or bool(self._state().get("fresh"))
        if st.running:
            same = st.deployed_fingerprint == st.fingerprint
            if same and not fresh and (st.parallelism or self.settings.stream.parallelism) == wanted:
                return DeployResult("unchanged", st)
            savepoint = self.stop(savepoint=True)
            self._start(restore=False if fresh else savepoint or True, parallelism=wanted)
            action = "redeployed fresh" if fresh else "redeployed" if not same else "rescaled"
            return DeployResult(action, self._wait_running(wait_s), savepoint)
        action = "restarted" if st.needs_restart else "started"
        self._start(restore=False if fresh else self._state().get("savepoint") or True, parallelism=wanted)
        return DeployResult(action, self._wait_running(wait_s))

    def fresh_next(self) -> None:
        """Make the next deploy start the job with no state (the job is not running now)."""
        state = self._state()
        if state:  # never deployed: it starts empty anyway
            self._save(**(state | {"fresh": True}))

    def _start(self, restore: str | bool, parallelism: int) -> None:
        """Start the job from this savepoint, from the latest checkpoint (True), or empty (False)."""
        if isinstance(restore, str):
            restored_from: str | None = restore
        else:
            restored_from = latest_checkpoint(self.settings, STREAM_PIPELINE) if restore else None
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_file.open("ab")
        args = [sys.executable, "-m", "cli.main", "stream"]
        env = os.environ | {f"{ENV_PREFIX}STREAM__PARALLELISM": str(parallelism)}
        if self.settings.stream.jobmanager:
            submit = args + ["submit"] + (["--restore-from", restored_from] if restored_from else [])
            subprocess.run(submit, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=600)
            args += ["load"]
        else:
            args += ["run"] + (["--restore-from", restored_from] if restored_from else ["--fresh"])
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        log.info(
            "started `%s` (pid %d, parallelism %d) from %s; log %s",
            " ".join(args[3:]), proc.pid, parallelism, restored_from, out.name,
        )  # fmt: skip
        self._save(
            pid=proc.pid,
            fingerprint=definition_fingerprint(self.settings),
            started_at=time.time(),
            restored_from=restored_from,
            parallelism=parallelism,
        )

    def _wait_running(self, wait_s: float) -> StreamStatus:
        deadline = time.monotonic() + wait_s
        while True:
            st = self.status(with_lag=False)
            if st.state == "RUNNING":
                return st
            if st.state in ("DEAD", "FAILED") or time.monotonic() > deadline:
                raise PlatformError(
                    f"the stream job did not reach RUNNING (state {st.state}); its log ends:\n{self._log_tail()}",
                    f"see its log {self.log_file}",
                )
            time.sleep(1)

    def _log_tail(self, lines: int = 12) -> str:
        try:
            with self.log_file.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
                text = f.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(ln.rstrip() for ln in text.splitlines()[-lines:])

    def stop(self, savepoint: bool = True, timeout_s: float = 120) -> str | None:
        """Stop the job (with a savepoint unless told otherwise) and its local process."""
        state = self._state()
        st = self.status(with_lag=False)
        location = None
        if savepoint and st.job_id and st.running:
            target = f"{self.settings.checkpoint_uri.rstrip('/')}/savepoints/{STREAM_PIPELINE}"
            location = FlinkRest(self.rest_address).stop_with_savepoint(st.job_id, target)
            log.info("stopped job %s with savepoint %s", st.job_id, location)
        elif st.job_id and st.running and self.settings.stream.jobmanager:
            FlinkRest(self.rest_address).cancel(st.job_id)
        pid = state.get("pid")
        if self._alive(pid):
            if not location:
                os.killpg(pid, signal.SIGTERM)  # cancels the job; it resumes from its last checkpoint
            deadline = time.monotonic() + timeout_s
            while self._alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if self._alive(pid):
                os.killpg(pid, signal.SIGKILL)
        if state:
            self._save(**(state | {"stopped": True, "savepoint": location}))
        return location
