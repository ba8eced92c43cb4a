"""`lambda-features ui` serves the Dagster UI on 127.0.0.1, and its GraphQL endpoint lists the assets."""

import os
import re
import signal
import time

import requests

from features.ecommerce import STREAM_FEATURES
from tests.conftest import cli, free_port


def test_ui_serves_and_lists_the_assets(platform_env):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k.startswith("LAMBDA_FEATURES_")}
    proc = cli(["ui", "--port", str(port)], env)
    dagster_group = 0
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
            try:
                r = requests.post(
                    f"http://127.0.0.1:{port}/graphql",
                    json={"query": "{ assetNodes { assetKey { path } } }"},
                    timeout=5,
                )
                if r.ok and r.json().get("data", {}).get("assetNodes"):
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "the UI did not answer"
            time.sleep(2)
        keys = {"/".join(n["assetKey"]["path"]) for n in r.json()["data"]["assetNodes"]}
        assert {"stream_job", "archive", "online_store"} <= keys
        assert {f"clickhouse/{f.name}" for f in STREAM_FEATURES} <= keys
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).ok

        # SIGTERM to the command stops the webserver, the daemon and the code server with it
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 0
        out = proc.stdout.read().decode()
        dagster_group = int(re.search(r"dagster dev: process group (\d+)", out).group(1))
        deadline = time.monotonic() + 30  # killed processes take a moment to be reaped
        while any(map(_group_alive, (proc.pid, dagster_group))) and time.monotonic() < deadline:
            time.sleep(1)
        for group in (proc.pid, dagster_group):
            assert not _group_alive(group), f"a Dagster process outlived `lambda-features ui`:\n{out[-2000:]}"
    finally:
        for group in (proc.pid, dagster_group):
            if group and _group_alive(group):
                os.killpg(group, signal.SIGKILL)
        proc.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
