"""Bad input and unreachable services: one clear message, a non-zero exit, no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port, free_ports, port_env, shared_env

CLI = [sys.executable, "-m", "cli.main"]
REPO = Path(__file__).resolve().parents[2]


def run_cli(args, tmp_path, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("LAMBDA_FEATURES_")}
    e |= {"LAMBDA_FEATURES_HOME": str(tmp_path / "home"), **port_env(free_ports()), **env}  # see conftest
    return subprocess.run(CLI + args, cwd=REPO, env=e, capture_output=True, text=True, timeout=120)


def check_clear_error(p, text):
    assert p.returncode == 2, p.stdout + p.stderr
    assert text in p.stdout and "Traceback" not in p.stdout + p.stderr


def test_missing_input_file(tmp_path):
    check_clear_error(
        run_cli(["replay", "--format", "taobao", str(tmp_path / "nope.csv")], tmp_path), "input file not found"
    )


def test_invalid_setting(tmp_path):
    check_clear_error(
        run_cli(["sql", "SELECT 1"], tmp_path, LAMBDA_FEATURES_REDIS__FLUSH_MS="-1"), "LAMBDA_FEATURES_REDIS__FLUSH_MS"
    )


def test_missing_connector_jar(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("1,2,3,pv,1511658000\n")
    p = run_cli(
        ["replay", "--format", "taobao", str(src)],
        tmp_path,
        LAMBDA_FEATURES_STREAM__KAFKA_CONNECTOR_DIR=str(tmp_path),
        LAMBDA_FEATURES_KAFKA__LOCAL_PORT=str(free_port()),
        LAMBDA_FEATURES_KAFKA__LOCAL_CONTROLLER_PORT=str(free_port()),
        LAMBDA_FEATURES_REDIS__LOCAL_PORT=str(free_port()),
    )
    check_clear_error(p, "Flink Kafka connector jar missing")


@pytest.mark.parametrize(
    "var,text",
    [
        ("LAMBDA_FEATURES_REDIS__URL", "cannot reach Redis"),
        ("LAMBDA_FEATURES_KAFKA__BOOTSTRAP", "cannot reach Kafka"),
    ],
)
def test_unreachable_service(tmp_path, var, text, request):
    src = tmp_path / "in.csv"
    src.write_text("1,2,3,pv,1511658000\n")
    port = free_port()
    value = f"redis://127.0.0.1:{port}/0" if "REDIS" in var else f"127.0.0.1:{port}"
    # Redis unreachable: on the session's broker (tests/README.md)
    kafka = {} if "KAFKA" in var else shared_env(request.getfixturevalue("shared_kafka"))
    p = run_cli(
        ["replay", "--format", "taobao", str(src)],
        tmp_path,
        **{var: value},
        LAMBDA_FEATURES_REDIS__LOCAL_PORT=str(free_port()),
        **kafka,
    )
    check_clear_error(p, text)


def test_unreachable_clickhouse_server(tmp_path):
    p = run_cli(["sql", "SELECT 1"], tmp_path, LAMBDA_FEATURES_CLICKHOUSE__URL=f"http://127.0.0.1:{free_port()}")
    check_clear_error(p, "cannot open ClickHouse")


@pytest.mark.parametrize("day,text", [("2099-01-01", "in the future"), ("yesterday", "is not a date")])
def test_batch_reconcile_bad_date(tmp_path, day, text):
    check_clear_error(run_cli(["batch", "reconcile", "--date", day], tmp_path), text)


@pytest.mark.parametrize(
    "start,end,text", [("2026-02-10", "2026-02-01", "reversed"), ("2026-02-01", "2099-01-01", "in the future")]
)
def test_backfill_bad_range(tmp_path, start, end, text):
    check_clear_error(run_cli(["batch", "backfill", "--start", start, "--end", end], tmp_path), text)


def test_sql_prints_a_result(tmp_path):
    p = run_cli(["sql", "SELECT 1 + 1 AS two", "--format", "csv"], tmp_path)
    assert p.returncode == 0 and p.stdout.splitlines()[-2:] == ["two", "2"], p.stdout + p.stderr


@pytest.mark.parametrize(
    "args,text",
    [
        (["features-30d", "--date", "2026-02-10"], "no archived events in the 30 days up to 2026-02-10"),
        (["publish", "--date", "2026-02-10"], "no complete top_brands_30d as of 2026-02-10"),
    ],
)
def test_batch_30d_without_input(tmp_path, args, text):
    """Refused before Spark starts: no archive in the 30 days, or nothing in the lake to publish."""
    check_clear_error(run_cli(["batch", *args], tmp_path), text)
