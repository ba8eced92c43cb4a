"""`ui`: the Dagster UI and daemon on 127.0.0.1, stopped with everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from cli.console import console, settings

UI_STOP_GRACE_S = 30


def ui(port: Annotated[int | None, typer.Option(help="default: ORCHESTRATION__UI_PORT")] = None) -> None:
    """The Dagster UI with its daemon (schedules, the stream supervisor) on 127.0.0.1."""
    from orchestration.instance import ensure_dagster_home

    s = settings()
    ensure_dagster_home(s)
    port = port or s.orchestration.ui_port
    dagster = str(Path(sys.executable).parent / "dagster")
    args = [dagster, "dev", "-m", "orchestration.definitions", "-h", "127.0.0.1", "-p", str(port)]
    # its own process group, so that stopping it reaches the webserver, daemon and code server
    proc = subprocess.Popen(args, env=os.environ | {"DAGSTER_HOME": str(s.dagster_home)}, start_new_session=True)
    console.print(f"Dagster UI on http://127.0.0.1:{port} (Ctrl-C or SIGTERM stops it)")
    console.print(f"dagster dev: process group {proc.pid}")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while proc.poll() is None and not stop.wait(1):
        pass
    asked = proc.poll() is None
    stop_group(proc)  # also when dagster dev ended by itself: nothing of its group may outlive it
    raise typer.Exit(0 if asked else proc.returncode)


def stop_group(proc: subprocess.Popen) -> None:
    """Stop dagster dev as Ctrl-C does (SIGINT: it shuts its processes down cleanly); when
    it has not ended after UI_STOP_GRACE_S, SIGTERM then SIGKILL its whole process group."""

    def signal_group(sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    if proc.poll() is None:
        signal_group(signal.SIGINT)
        try:
            proc.wait(UI_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            console.print(f"[yellow]dagster dev did not stop within {UI_STOP_GRACE_S}s of SIGINT: terminating it")
            signal_group(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                signal_group(signal.SIGKILL)
                proc.wait()
    signal_group(signal.SIGKILL)  # stragglers of the group (a code server whose parent died)
