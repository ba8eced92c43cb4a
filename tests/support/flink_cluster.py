"""A real Flink standalone session cluster from the apache-flink wheel's bin/ scripts,
bound to 127.0.0.1, with small memory; started and stopped by the tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pyflink

FLINK_HOME = Path(pyflink.__file__).resolve().parent
OPENS = ("java.lang", "java.util")


def rest(port: int, path: str, method: str = "GET") -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        body = r.read()
    return json.loads(body) if body else {}


@contextmanager
def session_cluster(workdir: Path, rest_port: int, rpc_port: int):
    conf = workdir / "conf"
    for d in ("conf", "log", "pid", "tmp"):
        (workdir / d).mkdir(parents=True)
    for f in (FLINK_HOME / "conf").glob("log4j*.properties"):
        shutil.copy(f, conf)
    (conf / "config.yaml").write_text(
        "\n".join(
            [
                "jobmanager.rpc.address: localhost",
                f"jobmanager.rpc.port: {rpc_port}",
                "jobmanager.bind-host: 127.0.0.1",
                "taskmanager.bind-host: 127.0.0.1",
                "taskmanager.host: localhost",
                "jobmanager.memory.process.size: 768m",
                "taskmanager.memory.process.size: 1280m",
                "taskmanager.memory.managed.size: 256m",
                "taskmanager.numberOfTaskSlots: 2",
                "parallelism.default: 2",
                f"rest.port: {rest_port}",
                "rest.address: 127.0.0.1",
                "rest.bind-address: 127.0.0.1",
                "blob.server.port: 0",
                "taskmanager.rpc.port: 0",
                f"io.tmp.dirs: {workdir / 'tmp'}",
                "env.java.opts.all: " + " ".join(f"--add-opens=java.base/{p}=ALL-UNNAMED" for p in OPENS),
            ]
        )
        + "\n"
    )
    (conf / "masters").write_text(f"localhost:{rest_port}\n")
    (conf / "workers").write_text("localhost\n")
    env = os.environ | {
        "FLINK_CONF_DIR": str(conf),
        "FLINK_LOG_DIR": str(workdir / "log"),
        "FLINK_PID_DIR": str(workdir / "pid"),
        "FLINK_HOME": str(FLINK_HOME),
    }
    bin_dir = FLINK_HOME / "bin"
    for name in ("jobmanager.sh", "taskmanager.sh"):
        subprocess.run(["bash", str(bin_dir / name), "start"], env=env, check=True, capture_output=True, timeout=120)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if rest(rest_port, "/overview").get("taskmanagers", 0) >= 1:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                logs = "\n".join(p.read_text()[-2000:] for p in (workdir / "log").glob("*.log"))
                raise RuntimeError(f"the Flink session cluster did not come up:\n{logs}")
            time.sleep(1)
        yield rest_port
    finally:
        for name in ("taskmanager.sh", "jobmanager.sh"):
            subprocess.run(["bash", str(bin_dir / name), "stop"], env=env, capture_output=True, timeout=120)
