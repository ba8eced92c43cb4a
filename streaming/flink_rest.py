"""The few calls of Flink's REST API the platform makes: the supervisor's and the autoscaler's
decisions, `stream status`, stopping with a savepoint. Time series come from Flink's own
Prometheus reporter, not from here."""

from __future__ import annotations

import time

import requests

from common.errors import PlatformError
from streaming.checkpoints import savepoint_on_disk


class FlinkRest:
    """The few calls of Flink's REST API the supervisor needs."""

    def __init__(self, address: str, timeout: float = 5.0) -> None:
        self.base = address if address.startswith("http") else f"http://{address}"
        self.timeout = timeout

    def _get(self, path: str, **params: str):  # -> dict | list
        r = requests.get(self.base + path, params=params or None, timeout=self.timeout)
        r.raise_for_status()
        return r.json()

    def reachable(self) -> bool:
        try:
            self._get("/overview")
            return True
        except requests.RequestException:
            return False

    def job(self, name: str) -> dict | None:
        """The newest job of that name, running ones first."""
        jobs = [j for j in self._get("/jobs/overview")["jobs"] if j["name"] == name]
        jobs.sort(key=lambda j: (j["state"] == "RUNNING", j["start-time"]), reverse=True)
        return jobs[0] if jobs else None

    def last_checkpoint(self, jid: str) -> dict | None:
        done = (self._get(f"/jobs/{jid}/checkpoints").get("latest") or {}).get("completed")
        if not done:
            return None
        return {"id": done["id"], "path": done["external_path"], "at_ms": done["latest_ack_timestamp"]}

    def throughput(self, jid: str) -> tuple[int, int, str]:
        """Records the source tasks passed on (once per branch), records the sinks took in, worst backpressure."""
        vertices = self._get(f"/jobs/{jid}")["vertices"]
        source_records_out = sum(v["metrics"]["write-records"] for v in vertices if "Source" in v["name"])
        sinks = [v for v in vertices if "Sink" in v["name"] or "Writer" in v["name"]]
        sink_records_in = sum(v["metrics"]["read-records"] for v in sinks)
        levels = ["ok"]
        for v in vertices:
            try:
                levels.append(self._get(f"/jobs/{jid}/vertices/{v['id']}/backpressure").get("backpressureLevel", "ok"))
            except requests.RequestException:
                pass
        worst = max(levels, key=["ok", "low", "high"].index)
        return source_records_out, sink_records_in, worst

    def vertices(self, jid: str) -> list[dict]:
        return self._get(f"/jobs/{jid}")["vertices"]

    def metric_ids(self, path: str) -> list[str]:
        """The metrics a scope serves: `/jobmanager`, `/jobs/<jid>` or `/jobs/<jid>/vertices/<vid>`."""
        return [m["id"] for m in self._get(f"{path}/metrics")]

    def metrics(self, path: str, ids: list[str]) -> dict[str, str]:
        """Values of these metrics of a scope (strings, as Flink serves them)."""
        out: dict[str, str] = {}
        chunk: list[str] = []
        for i, metric in enumerate(ids):
            chunk.append(metric)
            # Flink's REST server refuses request lines over 4096 bytes
            if i == len(ids) - 1 or sum(map(len, chunk)) + len(ids[i + 1]) > 2000:
                out |= {m["id"]: m["value"] for m in self._get(f"{path}/metrics", get=",".join(chunk))}
                chunk = []
        return out

    def subtask_sums(self, jid: str, vid: str, names: tuple[str, ...]) -> dict[str, float]:
        """These task metrics of a vertex, summed over its subtasks."""
        got = self._get(f"/jobs/{jid}/vertices/{vid}/subtasks/metrics", get=",".join(names))
        return {m["id"]: float(m.get("sum", 0)) for m in got}

    def checkpoint_summary(self, jid: str) -> dict:
        """Duration and size statistics of the job's completed checkpoints."""
        return self._get(f"/jobs/{jid}/checkpoints").get("summary", {})

    def checkpoint_interval_ms(self, jid: str) -> int | None:
        return self._get(f"/jobs/{jid}/checkpoints/config").get("interval")

    def source_metrics(self, jid: str, suffixes: tuple[str, ...]) -> dict[str, dict[str, float]]:
        """Source operator metrics whose names end in one of the suffixes (e.g.
        currentEmitEventTimeLag, pendingRecords), each aggregated over the subtasks:
        {suffix: {"min", "max", "avg", "sum"}}."""
        out: dict[str, dict[str, float]] = {}
        for v in self._get(f"/jobs/{jid}")["vertices"]:
            if "Source" not in v["name"]:
                continue
            path = f"/jobs/{jid}/vertices/{v['id']}/subtasks/metrics"
            available = [m["id"] for m in self._get(path)]
            wanted = {m: s for m in available for s in suffixes if m.endswith("." + s)}
            if not wanted:
                continue
            r = requests.get(self.base + path, params={"get": ",".join(wanted)}, timeout=self.timeout)
            r.raise_for_status()
            for m in r.json():
                out[wanted[m["id"]]] = {k: float(m[k]) for k in ("min", "max", "avg", "sum") if k in m}
        return out

    def cancel(self, jid: str) -> None:
        requests.patch(f"{self.base}/jobs/{jid}", params={"mode": "cancel"}, timeout=self.timeout).raise_for_status()

    def stop_with_savepoint(self, jid: str, target: str, timeout_s: float = 120) -> str:
        """Stop the job, taking a savepoint first; returns the savepoint's location."""
        asked_at = time.time()
        r = requests.post(
            f"{self.base}/jobs/{jid}/stop", json={"targetDirectory": target, "drain": False}, timeout=self.timeout
        )
        r.raise_for_status()
        trigger = r.json()["request-id"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                status = self._get(f"/jobs/{jid}/savepoints/{trigger}")
            except (requests.ConnectionError, requests.Timeout):
                # A local mini-cluster exits as soon as its job stopped, which may be before we
                # read the savepoint's status: the savepoint, complete by then, is on disk.
                found = savepoint_on_disk(target, jid, asked_at)
                if found:
                    return found
                time.sleep(0.5)
                continue
            if status["status"]["id"] == "COMPLETED":
                op = status["operation"]
                if "failure-cause" in op:
                    raise PlatformError(f"the savepoint of job {jid} failed: {op['failure-cause'].get('class')}")
                return op["location"]
            time.sleep(0.5)
        raise PlatformError(
            f"the savepoint of job {jid} did not complete within {timeout_s:.0f}s",
            f"look for it under {target}; without it the job resumes from its latest checkpoint",
        )
