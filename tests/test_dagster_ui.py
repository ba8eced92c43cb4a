"""`lambda-features ui` serves the Dagster UI on 127.0.0.1, and its GraphQL endpoint lists the assets."""

import os
import signal
import subprocess
import time

import pytest
import requests

from features.definitions import STREAM_FEATURES
from tests.conftest import cli, free_port

pytestmark = pytest.mark.slow


def test_ui_serves_and_lists_the_assets(platform_env):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k.startswith("LAMBDA_FEATURES_")}
    proc = cli(["ui", "--port", str(port)], env)
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
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
