"""Schemathesis against the API's own OpenAPI document, on a live `lambda-features serve`
over a filled Redis: valid and invalid requests from the schema; no 5xx, and every answer
as the document says (status codes, content types, response schemas)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from common.services import redis_service
from tests.conftest import free_port, isolated
from tests.support.serving_env import publish_batch, server, stream_rows, write_stream

USERS = range(-3, 20)  # the ids generators try first are small


@pytest.fixture(scope="module")
def api_url(tmp_path_factory):
    home = tmp_path_factory.mktemp("serving_schema") / "home"
    settings, env = isolated(home)
    redis = redis_service(settings)
    redis.start()
    try:
        now = int(time.time() * 1000)
        rows = []
        for u in USERS:  # fresh, stale and missing values, every feature
            age = (u % 3) * 4 * 24 * 3_600_000
            rows += stream_rows(u, now - age, cart=f"{u % 7}.{u % 10}0", searches=[f"q{u}", "x"] if u % 2 else None)
        write_stream(settings, rows)
        day = datetime.now(UTC).date() - timedelta(days=1)
        publish_batch(settings, day - timedelta(days=3), {u: ["b"] for u in USERS}, {0: (1, "1.00", 1, 1)})
        publish_batch(
            settings,
            day,
            {u: ["acme", "globex", "hooli"][: u % 4] for u in USERS if u % 4},
            {u: (u % 5, f"{u % 5}.25", u % 3, 1) for u in USERS if u % 3},
        )
        with server(env, free_port(), home / "serve.log") as served:
            url = served.url
            yield url
    finally:
        redis.stop()


def test_api_conforms_to_its_schema(api_url, tmp_path):
    """Every check schemathesis has, every phase (examples, coverage edge cases, fuzzing,
    stateful), valid and invalid inputs, a fixed seed."""
    st = Path(sys.executable).parent / "schemathesis"
    run = subprocess.run(
        [
            str(st), "run", f"{api_url}/openapi.json", "--checks", "all", "--mode", "all",
            "--max-examples", "150", "--seed", "42", "--generation-database", "none",
            "--request-timeout", "10", "--no-color", "--report-dir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,  # its caches go there
    )  # fmt: skip
    print(run.stdout[-1500:])  # the summary, with -s
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
