"""The feature loaders as processes of their own (`python -m streaming.loader_process ROLE`).

Their owner (`stream run`, `replay`, `stream load`) starts one process per loader, restarts
one that dies, and stops them by closing their stdin, so a loader also stops (after its last
flush and commit) when its owner dies. A loader reports its statistics as JSON lines on stdout,
and the online loader also when Redis lost changes it had written (`store_lost`): it rebuilds
the stream features itself, and its owner's `on_store_lost` (given by a layer above, which may
reach the batch layer) republishes the rest.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from common.errors import PlatformError
from common.metrics import serve_metrics
from common.settings import Settings
from streaming.loader import LOADERS, LoaderStats

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
ROLES = tuple(LOADERS)  # online, olap
MAX_RESTARTS = 8  # in a row, about 90 s of back-off in all; a loader that ran a minute is healthy again
HEALTHY_AFTER_S = 60
STOP_TIMEOUT_S = 120  # the OLAP loader may be inside a 50k-row insert


def process_name(role: str) -> str:
    """What `ps` shows for a loader process (its comm, at most 15 characters)."""
    return f"lf-load-{role}"


class LoaderProcess:
    """One loader in its own process, restarted by `check` after it died."""

    def __init__(
        self,
        role: str,
        settings: Settings,
        run_id: str | None,
        measure_latency: float | None,
        on_store_lost: Callable[[], None] | None = None,
    ) -> None:
        self.role = role
        self.on_store_lost = on_store_lost
        self.settings = settings
        self.args = [sys.executable, "-m", "streaming.loader_process", role]
        self.args += ["--run-id", run_id] if run_id else []
        self.args += ["--measure-latency", str(measure_latency)] if measure_latency is not None else []
        self.proc: subprocess.Popen | None = None
        self.reader: threading.Thread | None = None
        self.current = LoaderStats()
        self.earlier = LoaderStats()  # what the processes before this one reported
        self.finished = False
        self.error: str | None = None
        self.started_at = 0.0
        self.failures = 0  # in a row
        self.restart_at: float | None = None
        self.stopping = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def stats(self) -> LoaderStats:
        return self.earlier + self.current

    def start(self) -> None:
        self.earlier = self.stats
        self.current, self.finished, self.error, self.restart_at = LoaderStats(), False, None, None
        self.proc = subprocess.Popen(self.args, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(self.settings.model_dump_json().encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:  # it died at once; `check` sees it
            pass
        self.started_at = time.monotonic()
        self.reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self.reader.start()
        log.info("%s loader started (pid %d)", self.role, self.proc.pid)

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                log.warning("%s loader wrote %r", self.role, line[:200])
                continue
            if msg.get("store_lost"):
                self._store_lost()
                continue
            self.current = LoaderStats.from_json(msg["stats"])
            if msg["done"]:
                self.finished, self.error = msg["error"] is None, msg["error"]

    def _store_lost(self) -> None:
        """Run the owner's on_store_lost beside the loader (it must not hold up its reports)."""
        if self.on_store_lost is None:
            log.warning("the %s loader's store lost changes; nothing here republishes the batch features", self.role)
            return

        def run() -> None:
            try:
                self.on_store_lost()  # type: ignore[misc]
            except Exception:
                log.exception("after the %s loader's store lost changes: republishing failed", self.role)

        threading.Thread(target=run, daemon=True).start()

    def exited(self) -> int | None:
        """The exit code once the process ended and everything it reported was read."""
        if self.proc is None or self.proc.poll() is None:
            return None
        assert self.reader is not None
        self.reader.join(10)
        return self.proc.returncode

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Ask it to flush, commit and exit (EOF on its stdin); kill it after timeout_s."""
        self.stopping = True
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout_s)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            log.warning("%s loader (pid %d) did not stop within %.0fs: killing it", self.role, self.proc.pid, timeout_s)
            self.proc.kill()
            self.proc.wait()
        self.exited()

    def check(self) -> None:
        """Restart it when it died (killed, or failed: Redis or ClickHouse unreachable...)."""
        code = self.exited()
        if code is None or self.finished or self.stopping:
            return
        now = time.monotonic()
        if self.restart_at is None:
            healthy = now - self.started_at >= HEALTHY_AFTER_S
            self.failures = 1 if healthy else self.failures + 1
            why = self.error or f"exit code {code}"
            if self.failures > MAX_RESTARTS:
                raise PlatformError(
                    f"the {self.role} feature loader failed {MAX_RESTARTS + 1} times in a row; last: {why}",
                    "see the log above; the stream job can be restarted once the store is reachable",
                )
            delay = 0 if self.failures == 1 else min(2 ** (self.failures - 2), 30)
            log.error("%s loader (pid %d) died (%s); restarting it in %ds", self.role, self.proc.pid, why, delay)  # type: ignore[union-attr]
            self.restart_at = now + delay
        if now >= self.restart_at:
            self.start()


class Loaders:
    """The loaders of one owner (both unless told otherwise), each in its own process."""

    def __init__(
        self,
        settings: Settings,
        run_id: str | None = None,
        measure_latency: float | None = None,
        roles: Iterable[str] = ROLES,
        on_store_lost: Callable[[], None] | None = None,
    ) -> None:
        """on_store_lost: what to do besides the stream features' rebuild once the online store
        lost changes (the CLI republishes the 30-day features)."""
        self.procs = {r: LoaderProcess(r, settings, run_id, measure_latency, on_store_lost) for r in roles}

    def start(self) -> None:
        for p in self.procs.values():
            p.start()

    def check(self) -> bool:
        """Restart the loaders that died; True once every one ended its bounded run."""
        for p in self.procs.values():
            p.check()
        return all(p.finished for p in self.procs.values())

    def wait(self, poll_s: float = 0.2) -> None:
        """Until every loader ended its bounded run, restarting those that die."""
        while not self.check():
            time.sleep(poll_s)

    def stop(self) -> None:
        threads = [threading.Thread(target=p.stop) for p in self.procs.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def stats(self, role: str) -> LoaderStats:
        return self.procs[role].stats if role in self.procs else LoaderStats()

    def progress(self) -> str:
        online, olap = self.stats("online"), self.stats("olap")
        return (
            f"loaders: online {online.messages:,} changes, {online.redis_writes:,} Redis writes; "
            f"OLAP {olap.messages:,} changes, {sum(olap.rows.values()):,} ClickHouse rows"
        )


def serve(settings: Settings, roles: Iterable[str] = ROLES, on_store_lost: Callable[[], None] | None = None) -> None:
    """Run the loaders until SIGINT or SIGTERM (`stream load`), then stop them cleanly."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    loaders = Loaders(settings, roles=roles, on_store_lost=on_store_lost)
    loaders.start()
    last = time.monotonic()
    try:
        while not stop.wait(0.5):
            loaders.check()
            if time.monotonic() - last >= 5:
                log.info(loaders.progress())
                last = time.monotonic()
    finally:
        loaders.stop()
    log.info(loaders.progress())


# -- the loader process ------------------------------------------------------------------
def _name_process(name: str) -> None:
    try:
        Path("/proc/self/comm").write_text(name[:15])
    except OSError:  # not Linux: ps shows python
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="one feature loader; its settings as JSON on the first line of stdin")
    ap.add_argument("role", choices=ROLES)
    ap.add_argument("--run-id", help="a bounded run: stop once its end markers arrived")
    ap.add_argument(
        "--measure-latency", type=float, metavar="WARMUP_S", help="time event -> Redis after this warm-up (online)"
    )
    args = ap.parse_args(argv)
    # Ctrl-C and SIGTERM reach the whole process group; the owner stops the loaders after the job
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _name_process(process_name(args.role))
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.role} loader: %(message)s", stream=sys.stderr)
    # reports go to the real stdout; anything else a library prints goes to stderr
    reports = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    settings = Settings.model_validate_json(sys.stdin.readline())
    m = settings.monitoring
    serve_metrics(settings, m.loader_port if args.role == "online" else m.olap_loader_port, f"the {args.role} loader")
    stop = threading.Event()

    def until_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=until_eof, daemon=True).start()

    def report(stats: LoaderStats, done: bool = False, error: str | None = None) -> None:
        reports.write(json.dumps({"stats": stats.as_json(latency=done), "done": done, "error": error}) + "\n")
        reports.flush()

    from streaming.job import compiled_queries

    extra = {"measure_latency": args.measure_latency} if args.role == "online" else {}
    stats = LoaderStats()
    try:
        loader = LOADERS[args.role](
            settings, [q for _, q in compiled_queries(settings)], run_id=args.run_id, should_stop=stop.is_set, **extra
        )
        stats = loader.stats
        loader.on_progress = report
        if args.role == "online":

            def store_lost() -> None:
                reports.write(json.dumps({"store_lost": True}) + "\n")
                reports.flush()

            loader.on_store_lost = store_lost  # type: ignore[attr-defined]
        loader.run()
    except PlatformError as e:  # a store or the broker unreachable: said plainly
        log.error("the %s loader stopped: %s", args.role, e)
        report(stats, done=True, error=str(e))
        return 1
    except Exception as e:
        log.exception("the %s loader failed", args.role)
        report(stats, done=True, error=f"{type(e).__name__}: {e}")
        return 1
    report(stats, done=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
