"""Monitoring: the Prometheus rules and their unit tests (promtool), every PromQL expression of
the Grafana dashboard, the scrape configuration, the exporter's parts on real stores and files,
the online-store heartbeat, and a real Prometheus scraping real processes of the platform."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from common import metrics
from common.metrics import serve_metrics
from common.prometheus import DEPLOY_DIR, prometheus_config
from common.redis_store import get_redis, newest_online_event_ms, queue_heartbeat
from common.services import clickhouse_service, exporter_service, prometheus_service
from common.settings import load_settings
from dq_checks import CheckResult, record
from dq_checks.freshness import online_store
from monitoring.outputs import StreamOutputs
from monitoring.results import dq_metrics, freshness_bounds, tiering_metrics
from orchestration.sensors import observation
from streaming.deployment import StreamStatus
from streaming.flink_metrics import FlinkReader, _wanted, prometheus_name
from tiering import manifest

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "lambda-features.json"
OPERATIONS = REPO / "docs" / "operations.md"


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: `make setup` installs Debian's prometheus, which has it"
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_rules_pass_promtool_check_and_their_unit_tests():
    rules = sorted(str(p) for p in (DEPLOY_DIR / "rules").glob("*.yml"))
    checked = promtool("check", "rules", *rules)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = sorted(str(p) for p in (DEPLOY_DIR / "tests").glob("*.yml"))
    tested = promtool("test", "rules", *tests)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def _rules() -> list[dict]:
    return [
        r
        for p in (DEPLOY_DIR / "rules").glob("*.yml")
        for g in yaml.safe_load(p.read_text())["groups"]
        for r in g["rules"]
    ]


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not():
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    fired, quiet = set(), set()
    for p in (DEPLOY_DIR / "tests").glob("*.yml"):
        for t in yaml.safe_load(p.read_text())["tests"]:
            for case in t.get("alert_rule_test", []):
                (fired if case["exp_alerts"] else quiet).add(case["alertname"])
    assert alerts == fired == quiet, (alerts, fired, quiet)


def _dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_every_dashboard_expression_is_valid_promql(tmp_path):
    """promtool parses each expression as the expression of a recording rule."""
    exprs = _dashboard_exprs()
    assert len(exprs) > 20
    rules = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"dashboard:expr_{i}", "expr": e} for i, e in enumerate(exprs)]}
        ]
    }
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", str(tmp_path / "dashboard.yml"))
    assert checked.returncode == 0 and f"SUCCESS: {len(exprs)} rules found" in checked.stdout, (
        checked.stdout + checked.stderr
    )
    # and a broken one is refused, so the check really parses
    (tmp_path / "broken.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "b", "rules": [{"record": "b:x", "expr": "sum by (le (x)"}]}]})
    )
    assert promtool("check", "rules", str(tmp_path / "broken.yml")).returncode != 0


def test_names_in_rules_and_dashboard_are_recorded_or_documented():
    """Every lf: series they read is a recording rule, and every lf_ metric is in docs/operations.md."""
    recorded = {r["record"] for r in _rules() if "record" in r}
    text = " ".join(_dashboard_exprs() + [r["expr"] for r in _rules()])
    assert set(re.findall(r"\blf:[a-z0-9_:]+", text)) <= recorded
    docs = OPERATIONS.read_text()
    used = {re.sub(r"_(total|bucket|count|sum)$", "", m) for m in re.findall(r"\blf_[a-z0-9_]+", text)}
    assert not [m for m in sorted(used) if m not in docs]


def test_deploy_scrape_config_is_the_generated_one(tmp_path):
    assert (DEPLOY_DIR / "prometheus.yml").read_text() == prometheus_config(load_settings(home=tmp_path))
    checked = promtool("check", "config", "prometheus.yml", cwd=DEPLOY_DIR)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_autoscalers_reader_names_flink_metrics_as_flink_reporter_does():
    src = "Source__KafkaSource-default_catalog_default_database_raw_events"
    assert _wanted(f"1.{src}.KafkaSourceReader.KafkaConsumer.records-lag-max") == (
        src, "KafkaSourceReader.KafkaConsumer.records-lag-max", {}
    )  # fmt: skip
    assert prometheus_name("taskmanager_job_task_operator", "KafkaSourceReader.KafkaConsumer.records-lag-max") == (
        "flink_taskmanager_job_task_operator_KafkaSourceReader_KafkaConsumer_records_lag_max"
    )
    op, metric, labels = _wanted(f"0.{src}.KafkaSourceReader.topic.lf_events.partition.1.currentOffset")
    assert (metric, labels) == (
        "KafkaSourceReader.topic.partition.currentOffset",
        {"topic": "lf_events", "partition": "1"},
    )
    assert _wanted("0.backPressuredTimeMsPerSecond") == ("", "backPressuredTimeMsPerSecond", {})
    assert _wanted("0.sink_uv_1m[25]__Writer.numRecordsIn") == ("sink_uv_1m[25]__Writer", "numRecordsIn", {})
    assert _wanted("0.StreamingFileWriter.numRecordsIn") is None  # the archive, not a feature sink
    assert _wanted("0.Calc[2].numRecordsIn") is None
    assert prometheus_name("jobmanager_job", "lastCheckpointDuration") == "flink_jobmanager_job_lastCheckpointDuration"


def test_a_vertex_is_read_again_until_its_metrics_and_its_kafka_consumers_appear():
    """Flink's REST API lists a vertex's metrics only after it fetched them (first answer: none),
    and a Kafka source registers its consumer's metrics only after its first poll: an id list
    taken before must not be reused, or records-lag-max and the source's rates stay hidden for a
    minute (a CI failure, and an autoscaler that measured no rate)."""
    src = "Source__KafkaSource-default_catalog_default_database_kafka_events"
    before = ["0.busyTimeMsPerSecond", f"0.{src}.numRecordsOut"]
    after = [*before, f"0.{src}.KafkaSourceReader.KafkaConsumer.records-lag-max"]

    class Ids:  # stands in for the REST client: only the list of a vertex's metric ids is read
        def __init__(self, *reads: list[str]) -> None:
            self.reads = list(reads)

        def metric_ids(self, path: str) -> list[str]:
            return self.reads.pop(0)

    rest = Ids([], before, after, after)
    reader = FlinkReader(rest, "job")  # type: ignore[arg-type]
    path = "/jobs/j/vertices/v"
    assert reader._wanted_ids(path, has_source=True) == []
    assert [w[0] for w in reader._wanted_ids(path, has_source=True)] == before
    assert [w[0] for w in reader._wanted_ids(path, has_source=True)] == after
    assert [w[0] for w in reader._wanted_ids(path, has_source=True)] == after
    assert rest.reads == [after]  # complete after the third read: the fourth reused it
    other = Ids(["0.busyTimeMsPerSecond"], ["0.idleTimeMsPerSecond"])
    reader = FlinkReader(other, "job")  # type: ignore[arg-type]
    assert reader._wanted_ids("/v2", has_source=False) == reader._wanted_ids("/v2", has_source=False)
    assert other.reads == [["0.idleTimeMsPerSecond"]]  # no source: its first non-empty list is kept


def _lines(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as f:
        f.write(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def test_dead_letters_and_late_events_are_counted_once_as_their_files_appear(tmp_path):
    archive, dead = tmp_path / "archive", tmp_path / "dead"
    _lines(
        archive / "dt=2026-01-01" / "hour=10" / "part-a-0-0", [{"late": True}, {"late": False}]
    )  # before: not counted
    outputs = StreamOutputs(archive, dead)
    outputs.poll()
    assert outputs.late == outputs.archived == 0 and outputs.dead_letters == {}
    _lines(archive / "dt=2026-01-01" / "hour=10" / "part-a-0-1", [{"late": True}, {"late": True}, {"late": False}])
    _lines(archive / "dt=2026-01-02" / "hour=00" / "part-a-1-0", [{"late": True}])
    _lines(archive / "dt=2026-01-02" / "hour=00" / ".part-a-1-1.inprogress.x", [{"late": True}])  # not committed
    _lines(dead / "stream" / "part-b-0-0", [{"reason": "missing user_id"}] * 2 + [{"reason": "negative price"}])
    parse = dead / "parse" / "replay-1.parse.jsonl"
    _lines(parse, [{"reason": "bad JSON: x"}])
    with parse.open("ab") as f:
        f.write(b'{"reason": "half a li')  # still being written: not a line yet
    outputs.poll()
    outputs.poll()  # nothing new: nothing counted twice
    assert (outputs.late, outputs.archived) == (3, 4)
    assert outputs.dead_letters == {
        ("stream", "missing user_id"): 2,
        ("stream", "negative price"): 1,
        ("parse", "unparseable"): 1,
    }
    with parse.open("ab") as f:
        f.write(b'ne"}\n')
    outputs.poll()
    assert outputs.dead_letters[("parse", "unparseable")] == 2


def test_dq_and_tiering_results_and_freshness_bounds(settings):
    day = date(2026, 2, 9)
    results = [
        CheckResult("consistency", "uv_1m", day, False, "ERROR", "differs", {"mismatch_rate": 0.25}),
        CheckResult("consistency", "hot_items_5m", day, True, "ERROR", "same", {"mismatch_rate": 0.0}),
        CheckResult("validity_values", "uv_1m", day, True, "ERROR", "ok"),
    ]
    record(settings, results)
    record(settings, [CheckResult("consistency", "hot_items_5m", day, False, "ERROR", "rerun", {"mismatch_rate": 0.5})])
    assert not [s for fam in tiering_metrics(settings) for s in fam.samples]  # before tiering ever ran
    manifest.create(settings)
    manifest.record(settings, manifest.Entry("uv_1m_stream", day, "cold", 120, 7, 4096, ["a.parquet"], "file:///x"))
    manifest.record(settings, manifest.Entry("uv_1m_batch", day, "moving", 99, 1))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in [*dq_metrics(settings), *tiering_metrics(settings), freshness_bounds(settings)]
        for s in fam.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    # the latest result of each check, feature and day
    assert value("lf_dq_check_passed", check="consistency", feature="hot_items_5m", day=str(day), severity="ERROR") == 0
    assert value("lf_dq_failed_checks", check="consistency", severity="ERROR") == 2
    assert value("lf_dq_failed_checks", check="validity_values", severity="ERROR") == 0
    assert value("lf_dq_mismatch_rate", feature="hot_items_5m", day=str(day)) == 0.5
    assert value("lf_dq_mismatch_rate", feature="uv_1m", day=str(day)) == 0.25
    assert value("lf_tiering_moved_rows", table="uv_1m_stream") == 120  # cold only, not the move under way
    assert value("lf_tiering_moved_bytes", table="uv_1m_stream") == 4096
    assert ("lf_tiering_moved_rows", (("table", "uv_1m_batch"),)) not in samples
    assert value("lf_feature_freshness_bound_seconds", feature="uv_1m") == settings.dq.max_stream_lag_s + 60
    assert value("lf_feature_freshness_bound_seconds", feature="online_store") == settings.dq.max_online_lag_s


def test_online_freshness_reads_the_loaders_heartbeat(settings):
    redis = get_redis(settings)
    now = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
    assert not online_store(settings, now.date(), now).passed  # nothing written yet
    newest = int(now.timestamp() * 1000) - 5000

    def flush(*times: int) -> None:
        pipe = redis.pipeline(transaction=False)
        queue_heartbeat(pipe, settings, [((f"user:{i}", "last_event_time"), str(t)) for i, t in enumerate(times)])
        pipe.execute()

    flush(newest - 60_000, newest)
    flush(newest - 3_600_000)  # an older event later (another partition, a late event): no step back
    assert newest_online_event_ms(redis, settings) == newest
    result = online_store(settings, now.date(), now)
    assert result.passed and result.metrics["lag_s"] == 5
    assert not list(redis.scan_iter(f"{settings.redis.key_prefix}*"))  # no user key was made


def test_stream_job_observation_carries_numbers_to_plot():
    st = StreamStatus(state="RUNNING", fingerprint="f", rest="127.0.0.1:1", events_per_s=1234.5, event_time_lag_s=2.25)
    st.last_checkpoint_age_s, st.online_freshness_s = 4.0, None
    meta = observation(st).metadata
    assert meta["events/s"].value == 1234.5 and meta["event-time lag (s)"].value == 2.25
    assert meta["last checkpoint age (s)"].value == 4.0
    assert "online freshness (s)" not in meta  # unknown: a gap in the plot, not a made-up number


def _wait(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_prometheus_scrapes_the_platforms_processes(settings):
    """The real Prometheus, started as `services start` does on free ports, scrapes the
    ClickHouse service, the exporter and this process (as the runner and the loaders), and loads every rule."""
    s = settings.model_copy(update={"monitoring": settings.monitoring.model_copy(update={"scrape_interval_s": 5})})
    metrics.redis_flushed([(("user:1", "last_event_time"), str(int(time.time() * 1000) - 250))], 0.002, 0.001)
    m = s.monitoring
    # this process plays the stream runner and both loaders, one endpoint each
    own = [serve_metrics(s, port, "this test") for port in (m.stream_port, m.loader_port, m.olap_loader_port)]
    services = [clickhouse_service(s), exporter_service(s), prometheus_service(s)]
    api = f"http://127.0.0.1:{s.monitoring.prometheus_port}/api/v1"
    try:
        for svc in services:
            assert svc.start()
        own_text = requests.get(f"http://127.0.0.1:{s.monitoring.stream_port}/metrics", timeout=5).text
        assert any(f.name == "lf_online_freshness_seconds" for f in text_string_to_metric_families(own_text))

        seen: dict[str, str] = {}

        def targets_up():
            active = requests.get(f"{api}/targets", timeout=5).json()["data"]["activeTargets"]
            seen.update({t["labels"]["job"]: f"{t['health']} {t['lastError']}" for t in active})
            health = {t["labels"]["job"]: t["health"] for t in active}
            # no stream job here, so nothing serves Flink's reporter
            return health if {h for j, h in health.items() if j != "lambda-features-flink"} == {"up"} else None

        try:
            health = _wait(targets_up, 90, "every target up")
        except AssertionError:
            raise AssertionError(f"targets not up: {seen}") from None
        assert set(health) == {
            "lambda-features-stream",
            "lambda-features-flink",
            "lambda-features-loader",
            "lambda-features-loader-olap",
            "lambda-features-clickhouse",
            "lambda-features-exporter",
            "prometheus",
        }

        def query(q: str):
            return requests.get(f"{api}/query", params={"query": q}, timeout=5).json()["data"]["result"]

        assert (
            _wait(lambda: query("lf_online_freshness_seconds_count"), 30, "the loader's metric")[0]["value"][1] == "1"
        )
        assert _wait(lambda: query("lf_clickhouse_queries_total"), 30, "the ClickHouse service's metric")
        assert _wait(lambda: query('lf_exporter_part_up{part="kafka"}'), 30, "the exporter's metric")
        # no stream job here: the job-down alert's expression sees none
        running = query('max(flink_jobmanager_job_uptime{job_name="lambda_features_stream"}) or on() vector(0)')
        assert running[0]["value"][1] == "0"

        def rules():
            return [r for g in requests.get(f"{api}/rules", timeout=5).json()["data"]["groups"] for r in g["rules"]]

        assert len(_wait(rules, 30, "the rules")) == len(_rules())

        def evaluated():
            return all(r.get("health") == "ok" and r.get("lastEvaluation", "0001").startswith("20") for r in rules())

        assert _wait(evaluated, 30, "every rule evaluated")
    finally:
        for svc in reversed(services):
            svc.stop()
        for server in own:
            if server:
                server.stop()
    assert all(svc.pid() is None for svc in services)


def _scrape(port: int) -> dict[str, list]:
    """name -> samples of a metrics endpoint."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def test_a_deployed_stream_job_is_monitored_end_to_end(platform_env):
    """A real stream job on the local mini-cluster: Flink's own Prometheus reporter serves the
    job's metrics under their standard names, the exporter the Kafka lag and the autoscaler's
    view, the loader its own; Prometheus scrapes them and records the rules over Flink's names,
    and the status that the supervisor records carries the numbers Dagster plots."""
    from common.kafka import ensure_topics, producer
    from common.services import local_services
    from features.adapters import to_json
    from features.generator import GeneratorConfig, generate
    from streaming.deployment import StreamDeployment

    s = platform_env
    deployment = StreamDeployment(s)
    services = local_services(s)
    try:
        for svc in services:
            svc.start()
        ensure_topics(s, [s.kafka.events_topic], s.kafka.partitions)
        prod = producer(s)
        for e in generate(GeneratorConfig(seed=3), 2000):
            prod.produce(s.kafka.events_topic, to_json(e), key=str(e["user_id"]).encode())
        prod.produce(s.kafka.events_topic, b'{"event_id": "bad-1", "event_type": "click", "event_time": 1767225600000}')
        prod.flush(30)
        assert deployment.deploy(wait_s=600).status.state == "RUNNING"  # a loaded machine starts Flink slowly

        def source_out(m: dict) -> float:
            return sum(
                x.value
                for x in m.get("flink_taskmanager_job_task_operator_numRecordsOut", [])
                if re.fullmatch(r"Source.*_events", x.labels["operator_name"])
            )

        def reported():
            """Flink's own reporter, in the job's process: every event read, and its watermark."""
            m = _scrape(s.monitoring.flink_port)
            marks = m.get("flink_taskmanager_job_task_operator_currentOutputWatermark", [])
            return m if source_out(m) >= 2001 and any(x.value > 0 for x in marks) else None

        f = _wait(reported, 300, "Flink's reporter to count every event and serve the job's watermark")
        uptime = [x for x in f["flink_jobmanager_job_uptime"] if x.labels["job_name"] == "lambda_features_stream"]
        assert uptime and uptime[0].value > 0
        for name in (
            "flink_jobmanager_job_lastCheckpointDuration",
            "flink_jobmanager_job_numberOfFailedCheckpoints",
            "flink_taskmanager_job_task_backPressuredTimeMsPerSecond",
            "flink_taskmanager_job_task_busyTimeMsPerSecond",
            "flink_taskmanager_job_task_operator_KafkaSourceReader_KafkaConsumer_records_lag_max",
        ):
            assert f.get(name), name
        assert not _scrape(s.monitoring.exporter_port).get("flink_jobmanager_job_uptime")  # one source of each

        def exported():
            """The job's parallelism, and the Kafka lag once the broker's group coordinator answers."""
            m = _scrape(s.monitoring.exporter_port)
            return m if m.get("lf_stream_parallelism") and m.get("lf_kafka_consumer_lag") else None

        m = _wait(exported, 120, "the exporter's view of the job and of the Kafka lag")
        assert m["lf_stream_parallelism"][0].labels["job_name"] == "lambda_features_stream"
        assert {
            x.labels["partition"] for x in m["lf_kafka_consumer_lag"] if x.labels["topic"] == s.kafka.events_topic
        } == {"0", "1"}

        dead = _wait(
            lambda: _scrape(s.monitoring.exporter_port).get("lf_stream_dead_letters_total"), 180, "the dead letter"
        )  # committed at a checkpoint after its file rolled over
        assert [(x.labels["reason"], x.value) for x in dead] == [("missing user_id", 1)]

        loader = _wait(
            lambda: _scrape(s.monitoring.loader_port).get("lf_online_freshness_seconds_count"), 120, "loader"
        )
        assert loader[0].value > 0
        assert newest_online_event_ms(get_redis(s), s) is not None

        api = f"http://127.0.0.1:{s.monitoring.prometheus_port}/api/v1"

        def query(q: str):
            return requests.get(f"{api}/query", params={"query": q}, timeout=5).json()["data"]["result"] or None

        # Prometheus scrapes Flink's reporter, and the rules read Flink's standard names
        result = _wait(lambda: query("lf:stream_events_in:rate1m"), 120, "Prometheus to record the events' rate")
        assert result[0]["metric"]["job_name"] == "lambda_features_stream"
        assert _wait(lambda: query("lf:stream_event_time_lag_seconds"), 60, "the event-time lag")
        lag = _wait(lambda: query("flink_jobmanager_job_lastCheckpointDuration"), 60, "a checkpoint's duration")
        assert lag[0]["metric"]["job"] == "lambda-features-flink"

        st = _wait(lambda: (x := deployment.status()).last_checkpoint_age_s is not None and x, 60, "a checkpoint")
        assert st.events_per_s is not None and st.event_time_lag_s > 0 and st.online_freshness_s is not None
        meta = observation(st).metadata
        assert {"events/s", "event-time lag (s)", "online freshness (s)", "last checkpoint age (s)"} <= set(meta)
    finally:
        deployment.stop(savepoint=False)
        for svc in services:
            svc.stop()


def test_monitoring_settings_turn_the_parts_off(tmp_path):
    from common.services import local_services

    def names(**monitoring) -> list[str]:
        s = load_settings(home=tmp_path, monitoring=monitoring)
        return [svc.name for svc in local_services(s)]

    assert names()[-2:] == ["exporter", "prometheus"]
    assert names(local_prometheus=False)[-1] == "exporter"
    assert "exporter" not in names(enabled=False) and "prometheus" not in names(enabled=False)
    off = load_settings(home=tmp_path, monitoring={"enabled": False})
    assert serve_metrics(off, 1, "nothing") is None
    assert [svc.name for svc in local_services(load_settings(home=tmp_path), monitoring=False)] == [
        "redis", "kafka", "clickhouse"
    ]  # fmt: skip
    cluster = load_settings(home=tmp_path, stream={"jobmanager": "flink:8081"}, clickhouse={"url": "http://ch:8123"})
    assert "lambda-features-loader" in prometheus_config(cluster)
    assert "lambda-features-stream" not in prometheus_config(cluster)
    assert "lambda-features-clickhouse" not in prometheus_config(cluster)
