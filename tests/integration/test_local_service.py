"""A local service's stop, on a real JVM."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

from common.services import LocalService, process_running


def test_a_jvm_that_does_not_stop_in_time_leaves_its_threads_in_its_log_and_is_killed(tmp_path: Path):
    src = tmp_path / "Waits.java"
    src.write_text(
        "public class Waits { public static void main(String[] a) throws Exception { Thread.sleep(9999999); } }"
    )
    java = shutil.which("java") or "java"
    run = tmp_path / "run"
    run.mkdir()
    # SIGCONT as its stop signal: a signal the JVM ignores, so the stop times out for real; no
    # command, as the tests' teardown stops what a pidfile names (conftest.stop_local_services)
    svc = LocalService("waits", [], 0, run, stop_signal=signal.SIGCONT, stop_timeout_s=1)
    proc = subprocess.Popen([java, str(src)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    svc.pidfile.write_text(str(proc.pid))
    try:
        assert subprocess.run(["jcmd", str(proc.pid), "VM.version"], capture_output=True, timeout=60).returncode == 0
        svc.stop()
        assert not process_running(proc.pid)
        dump = (run / "waits.log").read_text()
        assert "did not stop in time" in dump and '"main"' in dump and "Waits.main" in dump
    finally:
        proc.kill()
