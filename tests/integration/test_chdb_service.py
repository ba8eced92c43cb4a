"""The local ClickHouse service over chDB: the HTTP interface as clickhouse-connect uses it,
several processes on one data path at once, clear errors, start and stop."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime

import orjson
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from common.chdb_http import Call, ClickHouseError, parse_call
from common.clickhouse import close_clients, get_client
from common.errors import PlatformError
from common.services import clickhouse_service, local_services
from tests.conftest import REPO, cli, env_of, isolated, shared_env

# -- the request translation (no engine) ------------------------------------------------


def test_insert_data_in_the_body_after_the_statement_line():
    body = b'INSERT INTO features.t (`a`, `b`) FORMAT JSONEachRow\n{"a": 1}\n{"a": 2}'
    call = parse_call("date_time_input_format=best_effort&query_id=q1&wait_end_of_query=1", body)
    assert call.sql == "INSERT INTO features.t (`a`, `b`) FORMAT JSONEachRow"
    assert call.data == b'{"a": 1}\n{"a": 2}'
    assert call.settings == {"date_time_input_format": "best_effort"}  # transport params are not settings
    assert call.query_id == "q1"


def test_insert_statement_in_the_url_and_binary_data_in_the_body():
    call = parse_call("query=INSERT+INTO+t+FORMAT+Native&database=features", b"\x00\x01\nbinary")
    assert (call.sql, call.data, call.database) == ("INSERT INTO t FORMAT Native", b"\x00\x01\nbinary", "features")


def test_body_continues_the_query_unless_it_is_insert_data():
    call = parse_call("query=SELECT&param_x=5&default_format=JSON", b"{x:Int32} + 1")
    assert call.sql == "SELECT\n{x:Int32} + 1" and call.data is None
    assert call.params == {"x": "5"} and call.default_format == "JSON" and call.settings == {}
    ddl = parse_call("", b"CREATE TABLE t (a Int64)\nENGINE = Memory")
    assert ddl.data is None and ddl.sql.startswith("CREATE TABLE")


@pytest.mark.parametrize(
    "query,body,text",
    [("", b"", "Empty query"), ("query=SELECT+1&compress=1", b"", "compress=False"), ("a-b=1&query=SELECT+1", b"", "")],
)
def test_bad_requests_are_clickhouse_errors(query, body, text):
    with pytest.raises(ClickHouseError) as e:
        parse_call(query, body)
    assert e.value.code == 36 and e.value.http_status == 400 and text in e.value.message


def test_chdb_error_text_keeps_code_and_name():
    e = ClickHouseError("some prefix Code: 60. DB::Exception: Unknown table 'x'. (UNKNOWN_TABLE)")
    assert (e.code, e.http_status) == (60, 404) and e.message.startswith("Code: 60.")
    assert Call("SELECT 1").default_format == "TabSeparated"


# -- the service for real -------------------------------------------------------------


def test_client_api_through_the_service(settings):
    ch = get_client(settings)
    assert clickhouse_service(settings).pid()  # started on demand
    ch.command("CREATE DATABASE IF NOT EXISTS t")
    ch.command(
        "CREATE TABLE t.ev (user_id Int64, day Date, at DateTime64(3, 'UTC'), tags Array(String), "
        "price Nullable(Float64)) ENGINE = ReplacingMergeTree ORDER BY user_id PARTITION BY day"
    )
    at = datetime(2026, 3, 1, 12, 0, 0, 125000, tzinfo=UTC)
    ch.insert(
        "t.ev", [[1, at.date(), at, ["a", "b\t'c"], None]], column_names=["user_id", "day", "at", "tags", "price"]
    )
    rows = [
        {"user_id": 2, "day": "2026-03-02", "at": "2026-03-02T10:00:00.5Z", "tags": [], "price": 9.5},
        {"user_id": 3, "day": "2026-03-02", "at": "2026-03-02 11:00:00", "tags": ["x"], "price": None},
    ]
    ch.raw_insert(
        "t.ev",
        ["user_id", "day", "at", "tags", "price"],
        insert_block=b"\n".join(orjson.dumps(r) for r in rows),
        fmt="JSONEachRow",
        settings={"date_time_input_format": "best_effort"},
    )
    result = ch.query("SELECT user_id, at, tags, price FROM t.ev ORDER BY user_id")
    assert result.column_names == ("user_id", "at", "tags", "price")
    assert result.result_rows[0] == (1, at.replace(tzinfo=None), ["a", "b\t'c"], None)
    assert [r["price"] for r in result.named_results()] == [None, 9.5, None]
    assert str(ch.query("SELECT at FROM t.ev WHERE user_id = 2").result_rows[0][0]) == "2026-03-02 10:00:00.500000"
    params = ch.query("SELECT count() FROM t.ev WHERE user_id > {u:Int64}", parameters={"u": 1})
    assert params.result_rows == [(2,)]
    assert ch.raw_query("SELECT user_id, price FROM t.ev ORDER BY user_id", fmt="CSV") == b"1,\\N\n2,9.5\n3,\\N\n"
    assert ch.command("SELECT 1, 'x'") == ["1", "x"] and ch.command("SELECT 1 WHERE 0") == ""
    ch.command("INSERT INTO t.ev SELECT user_id + 10, day, at, tags, price FROM t.ev")
    ch.command("ALTER TABLE t.ev DROP PARTITION '2026-03-02'")
    ch.command("OPTIMIZE TABLE t.ev FINAL")
    assert ch.query("SELECT groupArray(user_id) FROM (SELECT user_id FROM t.ev ORDER BY 1)").result_rows == [([1, 11],)]
    assert ch.query("SELECT getSetting('max_threads')", settings={"max_threads": 1}).result_rows == [(1,)]
    assert ch.query("SELECT getSetting('max_threads')").result_rows != [(1,)]  # settings last one call
    import clickhouse_connect

    other = clickhouse_connect.get_client(
        host="127.0.0.1", port=settings.clickhouse.local_port, database="t", compress=False
    )
    assert other.query("SELECT count() FROM ev").result_rows == [(2,)]  # the database parameter
    other.close()


def test_clickhouse_errors_arrive_with_their_message(settings):
    ch = get_client(settings)
    with pytest.raises(DatabaseError, match=r"Code: 60\..*UNKNOWN_TABLE"):
        ch.query("SELECT * FROM default.nope")
    with pytest.raises(DatabaseError, match=r"Code: 62\..*Syntax error"):
        ch.command("SELEC 1")
    with pytest.raises(DatabaseError, match="UNKNOWN_SETTING"):
        ch.query("SELECT 1", settings={"no_such_setting": 1})
    assert ch.query("SELECT 2").result_rows == [(2,)]  # the service is fine afterwards
    p = subprocess.run(
        [sys.executable, "-m", "cli.main", "sql", "SELECT * FROM features.nope"],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("LAMBDA_FEATURES_")} | env_of(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = " ".join(p.stdout.split())
    assert p.returncode == 2 and "query failed" in out and "UNKNOWN_TABLE" in out, p.stdout + p.stderr
    assert "Traceback" not in p.stdout + p.stderr


def test_refuses_a_taken_port(settings):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", settings.clickhouse.local_port))
        taken.listen()
        with pytest.raises(PlatformError, match="LAMBDA_FEATURES_CLICKHOUSE__LOCAL_PORT") as e:
            get_client(settings)
        assert "is taken" in e.value.what
    assert not clickhouse_service(settings).pidfile.exists()


def test_sigterm_stops_it_cleanly_and_the_data_stays(settings):
    svc = clickhouse_service(settings)
    get_client(settings).command("CREATE TABLE default.kept (a Int64) ENGINE = MergeTree ORDER BY a")
    get_client(settings).command("INSERT INTO default.kept VALUES (7)")
    pid = svc.pid()
    os.kill(pid, signal.SIGTERM)
    for _ in range(400):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # the test process started it: reap it
            break
        time.sleep(0.05)
    else:
        pytest.fail("the service did not stop on SIGTERM")
    assert not svc.pidfile.exists()  # removed by the service itself
    assert "stopped after" in (settings.run_dir / "clickhouse.log").read_text()
    # the cached client is replaced and the service started again, on the same data
    assert get_client(settings).query("SELECT a FROM default.kept").result_rows == [(7,)]


def test_services_start_and_stop_include_it(tmp_path):
    s, env = isolated(tmp_path / "home")
    start = cli(["services", "start"], env)
    out = start.communicate(timeout=180)[0].decode()
    assert start.returncode == 0 and "clickhouse: started" in out, out
    svc = clickhouse_service(s)
    pid = svc.pid()
    assert pid and svc.pidfile.exists()
    stop = cli(["services", "stop"], env)
    out = stop.communicate(timeout=180)[0].decode()
    assert stop.returncode == 0 and "clickhouse: stopped" in out, out
    assert not svc.pidfile.exists() and svc.pid() is None
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", s.clickhouse.local_port)) != 0  # nothing listens any more


def test_stopped_by_another_process_then_started_again(settings):
    """`services stop` from another process stops the service this process started (and
    holds a client of); the next get_client here starts a new one on the same data."""
    get_client(settings).command("CREATE TABLE default.k (a Int64) ENGINE = MergeTree ORDER BY a")
    first = clickhouse_service(settings).pid()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAMBDA_FEATURES_")} | env_of(settings)
    stop = subprocess.run(
        [sys.executable, "-m", "cli.main", "services", "stop"], cwd=REPO, env=env, capture_output=True, timeout=180
    )
    assert stop.returncode == 0 and clickhouse_service(settings).pid() is None
    assert get_client(settings).query("EXISTS TABLE default.k").result_rows == [(1,)]
    assert clickhouse_service(settings).pid() not in (None, first)


WRITER = """
import sys, orjson
from common.clickhouse import get_client
from common.settings import load_settings
ch = get_client(load_settings())
ch.command("CREATE TABLE IF NOT EXISTS default.w (batch Int64, i Int64) ENGINE = MergeTree ORDER BY (batch, i)")
print("ready", flush=True)
for b in range(int(sys.argv[1])):
    rows = b"\\n".join(orjson.dumps({"batch": b, "i": i}) for i in range(1000))
    ch.raw_insert("default.w", ["batch", "i"], insert_block=rows, fmt="JSONEachRow")
"""


def test_two_processes_write_and_read_at_once(settings):
    """A writer process inserts while this process and a `sql` process read."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAMBDA_FEATURES_")} | env_of(settings)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, "300"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert writer.stdout.readline().strip() == b"ready"
        ch = get_client(settings)
        seen = []
        while writer.poll() is None:
            seen.append(ch.query("SELECT count() FROM default.w").result_rows[0][0])
            time.sleep(0.05)
        assert writer.wait() == 0, writer.stdout.read().decode()
        assert any(0 < n < 300_000 for n in seen), seen  # read while the writer was writing
        assert seen == sorted(seen)
        p = subprocess.run(
            [sys.executable, "-m", "cli.main", "sql", "SELECT count() FROM default.w", "--format", "csv"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.stdout.splitlines()[-1] == "300000", p.stdout + p.stderr
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


def test_sql_answers_while_a_replay_writes(tmp_path, shared_kafka):
    """`lambda-features sql` in one process while a `replay` process's loader writes ClickHouse."""
    s, env = isolated(tmp_path / "home", **shared_env(shared_kafka))
    events = tmp_path / "events.jsonl"
    gen = cli(["generate", "--count", "30000", "--out", str(events)], env)
    assert gen.wait(120) == 0, gen.stdout.read().decode()
    replay = cli(["replay", "--format", "jsonl", str(events)], env)
    answered_during_replay = []
    try:
        deadline = time.monotonic() + 600
        while replay.poll() is None and time.monotonic() < deadline:
            q = cli(["sql", "SELECT count() FROM features.uv_1m_stream", "--format", "csv"], env)
            out = q.communicate(timeout=120)[0].decode()
            assert q.returncode == 0, out
            if replay.poll() is None:
                answered_during_replay.append(int(out.splitlines()[-1]))
            time.sleep(1)
        out = replay.communicate(timeout=600)[0].decode()
        assert replay.returncode == 0, out[-3000:]
        assert answered_during_replay, "no query finished while the replay ran"
        rows = int(re.search(r"rows in features\.uv_1m_stream\D+([\d,]+)", out).group(1).replace(",", ""))
        final = cli(["sql", "SELECT count() FROM features.uv_1m_stream FINAL", "--format", "csv"], env)
        assert final.communicate(timeout=120)[0].decode().splitlines()[-1] == str(rows) and rows > 0
    finally:
        if replay.poll() is None:
            replay.kill()
            replay.wait()
        close_clients()
        for svc in local_services(s):
            svc.stop()
