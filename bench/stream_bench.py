"""Benchmark of the stream layer (every feature, every sink, embedded defaults).

Each part runs in a process of its own, so each reports its own peak memory:
- replay: N generated events through the whole job (Flink, Kafka, both loaders, Redis, chDB):
  events/s until every sink holds everything, feature messages per event per feature, and
  CPU seconds and peak RSS of every process.
- flink: the same events through Flink alone with blackhole sinks: events/s of the whole
  job, and the CPU each feature (and the archive) costs over the bare source, one job each.
- live: events produced to Kafka at each --rate for --minutes by a separate producer
  process: latency per hop, whether the Kafka lag grew over the run, each Flink task's busy
  time, the checkpoints, and CPU seconds and peak RSS of every process (Flink JVM, loaders,
  broker, Redis, chDB, producer); with --profile, the Flink JVM's CPU per task (JFR).

Settings come from the environment as everywhere, e.g. LAMBDA_FEATURES_STREAM__STATE_BACKEND=rocksdb,
LAMBDA_FEATURES_STREAM__BUFFER_TIMEOUT_MS=10, LAMBDA_FEATURES_STREAM__CHANGELOG_FOLD_MS=1000.
    .venv/bin/python bench/stream_bench.py [--events 1000000] [--rate 10000 20000] [--minutes 5]
                                           [--parts replay flink live] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import TreeUsage, hardware, jit_share, load_average, thread_cpu_s  # noqa: E402
from common.clickhouse import close_clients  # noqa: E402
from common.kafka import bootstrap, ensure_topics  # noqa: E402
from common.ports import free_port  # noqa: E402
from common.repository import load_features  # noqa: E402
from common.services import local_services  # noqa: E402
from common.settings import Settings, load_settings  # noqa: E402
from features.generator import GeneratorConfig, generate  # noqa: E402
from streaming.deployment import kafka_lag  # noqa: E402
from streaming.flink_rest import FlinkRest  # noqa: E402
from streaming.job import FileSource, KafkaSource, compiled_queries  # noqa: E402
from streaming.staging import StagedWriter, StageResult  # noqa: E402

PIPELINE = "lambda-features-bench"
SERVICE_NAMES = {"kafka": "Kafka broker", "redis": "Redis", "clickhouse": "ClickHouse (chDB service)"}
LIVE_WARMUP_S = 30  # the live runs' warm-up: produced, but left out of every figure
LAG_EVERY_S = 5


def settings_for(home: Path) -> Settings:
    return load_settings(
        home=home,
        redis={"local_port": free_port()},
        kafka={"local_port": free_port(), "local_controller_port": free_port()},
        clickhouse={"local_port": free_port()},
        monitoring={"enabled": False},
    )


def env_of(s: Settings) -> dict[str, str]:
    """The environment that gives a child process these settings."""
    return os.environ | {
        "LAMBDA_FEATURES_HOME": str(s.home),
        "LAMBDA_FEATURES_KAFKA__LOCAL_PORT": str(s.kafka.local_port),
        "LAMBDA_FEATURES_KAFKA__LOCAL_CONTROLLER_PORT": str(s.kafka.local_controller_port),
        "LAMBDA_FEATURES_REDIS__LOCAL_PORT": str(s.redis.local_port),
        "LAMBDA_FEATURES_CLICKHOUSE__LOCAL_PORT": str(s.clickhouse.local_port),
    }


def levers(s: Settings) -> str:
    st, k = s.stream, s.kafka
    return ", ".join(
        [
            f"state backend {st.state_backend}",
            f"buffer timeout {st.buffer_timeout_ms} ms",
            f"watermarks {st.watermark_emit} (interval {st.watermark_interval_ms} ms)",
            f"changelog fold {st.changelog_fold_ms} ms / {st.changelog_fold_rows} keys",
            f"linger {k.events_linger_ms}/{k.features_linger_ms} ms (events/features hop)",
            f"fetch min {k.events_fetch_min_bytes:,}/{k.features_fetch_min_bytes:,} B, "
            f"wait {k.events_fetch_max_wait_ms}/{k.features_fetch_max_wait_ms} ms",
            f"parallelism {st.parallelism}",
            f"Redis flush {s.redis.flush_records} / {s.redis.flush_ms} ms",
            f"ClickHouse flush {s.clickhouse.flush_rows} / {s.clickhouse.flush_ms} ms",
        ]
    )


def stage(s: Settings, events: int) -> Path:
    staged = s.staging_dir / "bench.csv"
    t0 = time.monotonic()
    with StagedWriter(staged) as w:
        for i, e in enumerate(generate(GeneratorConfig(seed=1), events), start=1):
            w.write(0, i, e)
    took = time.monotonic() - t0
    print(f"staging (Python, generator -> CSV): {took:.1f}s ({events / took:,.0f} events/s)")
    return staged


class Watch:
    """Samples CPU and peak RSS of this process's tree every 0.5 s (services are children too)."""

    def __init__(self, labels: dict[int, str]) -> None:
        self.usage = TreeUsage(labels={os.getpid(): "bench (PyFlink client)", **labels})
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.wait(0.5):
            self.usage.sample(os.getpid())

    def label(self, pid: int, name: str) -> None:
        self.usage.labels[pid] = self.usage.names[pid] = name

    def snapshot(self) -> dict[int, float]:
        self.usage.sample(os.getpid())
        return dict(self.usage.cpu_s)

    def report(
        self, since: dict[int, float] | None = None, events: int = 0, until: dict[int, float] | None = None
    ) -> None:
        self.stop.set()
        self.thread.join()
        self.usage.sample(os.getpid())
        cpu, peak = self.usage.cpu_by_name(since, until), self.usage.peak_by_name()
        print(f"{'process':<28}{'CPU s':>9}{'µs CPU/event':>14}{'peak RSS MB':>13}")
        for name in sorted(peak, key=lambda n: -cpu.get(n, 0)):
            per = f"{cpu.get(name, 0) / events * 1e6:,.1f}" if events else ""
            print(f"{name:<28}{cpu.get(name, 0):>9.1f}{per:>14}{peak[name]:>13,.0f}")


def service_labels(s: Settings) -> dict[int, str]:
    """Start the local services (saying how long each took) and name their pids."""
    out = {}
    for svc in local_services(s):
        began = time.monotonic()
        if svc.start():
            print(f"started {svc.name} in {time.monotonic() - began:.1f} s")
        if svc.pid():
            out[svc.pid()] = SERVICE_NAMES.get(svc.name, svc.name)
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of a process now, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stop_services(s: Settings) -> None:
    close_clients()
    for svc in local_services(s):
        svc.stop()


def labelled(w: Watch) -> None:
    """Name the Flink JVM (java under this process)."""
    w.usage.sample(os.getpid())
    for pid, name in list(w.usage.names.items()):
        if name == "java":
            w.label(pid, "Flink JVM (mini-cluster)")


# -- replay: the whole job ------------------------------------------------------------------
def part_replay(events: int, home: Path) -> None:
    from streaming.runner import run_job

    s = settings_for(home)
    n = len(load_features(s).stream)
    print(f"\n== replay: {events:,} generated events through the whole job, all {n} features, every sink")
    print(f"levers: {levers(s)}")
    staged = stage(s, events)
    try:
        w = Watch(service_labels(s))
        summary = run_job(s, FileSource(staged), StageResult(staged, events=events), keep_services=True)
        labelled(w)
        print(
            f"job incl. JVM start, until every sink holds everything: {summary.seconds:.1f}s "
            f"-> {summary.rate:,.0f} events/s; late events {summary.late:,}"
        )
        print("feature messages per event (OLAP loader's count; tombstones are deletes the online loader skips):")
        prefix = s.kafka.features_topic_prefix
        for _, q in compiled_queries(s):
            n = summary.olap.topic_messages.get(prefix + q.output, 0)
            kind = "upsert-kafka" if q.updating else "kafka (append)"
            print(f"  {q.output:<26} {n / events:>7.3f}  ({n:,} messages, {kind})")
        total = sum(summary.olap.topic_messages.values())
        print(f"  {'all features':<26} {total / events:>7.3f}; online loader: {summary.online.messages:,} messages")
        w.report(events=events)
    finally:
        stop_services(s)


# -- flink: blackhole sinks, per feature ---------------------------------------------------
def part_flink(events: int, home: Path) -> None:
    from streaming.flink_env import create_table_env
    from streaming.job import build_statements

    s = settings_for(home)
    print(f"\n== flink alone: {events:,} generated events, blackhole sinks (Kafka only for the catalogue)")
    print(f"levers: {levers(s)}")
    staged = stage(s, events)
    try:
        w = Watch(service_labels(s))  # the broker: the enriched features read the catalogue topic
        names = [f.name for f in load_features(s).stream]
        runs = [("warm-up (bare source)", [], False), ("bare source", [], False), ("archive", [], True)]
        runs += [(n, [n], False) for n in names] + [("all features + archive", names, True)]
        rows = []
        for i, (label, features, archive) in enumerate(runs):
            for d in (s.archive_dir, s.dead_letter_dir, s.home / "checkpoints"):
                shutil.rmtree(d, ignore_errors=True)
            before = w.snapshot()
            t0 = time.monotonic()
            t_env = create_table_env(s, with_kafka=True, pipeline_name=f"bench-flink-{i}")
            stmts = build_statements(t_env, FileSource(staged), s, "blackhole", archive=archive, features=features)
            stmts.execute().wait()
            wall = time.monotonic() - t0
            labelled(w)
            cpu = w.usage.cpu_by_name(before).get("Flink JVM (mini-cluster)", 0.0)
            rows.append((label, wall, cpu))
        bare = rows[1][2]
        print(f"{'job':<26}{'wall s':>8}{'events/s':>11}{'JVM CPU s':>11}{'over bare s':>13}{'µs CPU/event':>14}")
        for label, wall, cpu in rows[1:]:
            over = cpu - bare if label != "bare source" else cpu
            per = over / events * 1e6
            print(f"{label:<26}{wall:>8.1f}{events / wall:>11,.0f}{cpu:>11.1f}{over:>13.1f}{per:>14.1f}")
        print("(over bare: the JVM's CPU beyond the bare source's; for the bare source, its own)")
        w.report()
    finally:
        stop_services(s)


# -- live: Kafka at a fixed rate -----------------------------------------------------------
def quantiles(hist: Counter, qs=(50, 90, 99)) -> list[float]:
    total = sum(hist.values())
    if not total:
        return []
    out, seen, keys = [], 0, sorted(hist)
    targets = [total * q / 100 for q in qs]
    it = iter(targets)
    target = next(it)
    for k in keys:
        seen += hist[k]
        while target is not None and seen >= target:
            out.append(float(k))
            target = next(it, None)
    return out + [float(keys[-1])]


def group_lag(s: Settings, group: str, topics: list[str]) -> int | None:
    """Messages on the topics the group has not committed yet."""
    from confluent_kafka import Consumer, TopicPartition

    from common.kafka import partitions_of

    try:
        c = Consumer({"bootstrap.servers": bootstrap(s), "group.id": group})
        try:
            parts = [TopicPartition(t, p) for t in topics for p in partitions_of(s, t)]
            lag = 0
            for tp in c.committed(parts, timeout=5):
                low, high = c.get_watermark_offsets(tp, timeout=5)
                lag += max(0, high - (tp.offset if tp.offset >= 0 else low))
            return lag
        finally:
            c.close()
    except Exception:  # informative only
        return None


def topic_end(s: Settings, topics: list[str]) -> int:
    from confluent_kafka import Consumer, TopicPartition

    from common.kafka import partitions_of

    c = Consumer({"bootstrap.servers": bootstrap(s), "group.id": "bench-probe"})
    try:
        return sum(
            c.get_watermark_offsets(TopicPartition(t, p), timeout=5)[1] for t in topics for p in partitions_of(s, t)
        )
    finally:
        c.close()


def growth(samples: list[tuple[float, int | None]], per_s: float, warmup_s: float) -> str:
    """Mean lag over the last third of the run against the first third (after warm-up)."""
    pts = [(t, v) for t, v in samples if v is not None and t >= warmup_s]
    if len(pts) < 6:
        return "too few samples"
    third = len(pts) // 3
    first, last = statistics.mean(v for _, v in pts[:third]), statistics.mean(v for _, v in pts[-third:])
    seconds_of_input = (last - first) / per_s if per_s else 0.0
    verdict = "GREW" if seconds_of_input > 2 else "steady"
    return f"{verdict}: first third {first:,.0f}, last third {last:,.0f} ({seconds_of_input:+.1f} s of input)"


TASK_TIMES = ("accumulateBusyTimeMs", "accumulateBackPressuredTimeMs", "accumulateIdleTimeMs")


def task_times(rest: FlinkRest, jid: str) -> dict[str, tuple[float, ...]]:
    """Per Flink task (a chain of operators): ms busy, back-pressured and idle so far, summed over
    its subtasks."""
    out = {}
    for v in rest.vertices(jid):
        sums = rest.subtask_sums(jid, v["id"], TASK_TIMES)
        out[v["name"]] = tuple(sums.get(t, 0.0) for t in TASK_TIMES)
    return out


def print_task_times(before: dict, after: dict, span_s: float) -> None:
    print("Flink tasks during production: share of wall time busy / back-pressured / idle (summed over subtasks)")
    rows = []
    for name, end in after.items():
        start = before.get(name, (0.0,) * len(TASK_TIMES))
        rows.append(([(e - b) / 1000 / span_s for b, e in zip(start, end, strict=True)], name))
    for shares, name in sorted(rows, key=lambda r: -r[0][0]):
        label = name if len(name) <= 90 else name[:87] + "..."
        print(f"  {shares[0]:>6.0%} {shares[1]:>6.0%} {shares[2]:>6.0%}  {label}")


class JvmProfile:
    """Java Flight Recorder on the Flink JVM (JDK's jcmd and jfr): which threads ran Java code,
    per Flink task (a chain of operators), from its CPU samples."""

    NAME = "lf-bench"

    def __init__(self, pid: int, path: Path) -> None:
        self.pid, self.path = pid, path
        self.ok = bool(shutil.which("jcmd") and shutil.which("jfr"))
        if self.ok:
            cmd = ["jcmd", str(pid), "JFR.start", f"name={self.NAME}", "settings=default", f"filename={path}"]
            self.ok = subprocess.run(cmd, capture_output=True, check=False).returncode == 0

    def stop(self) -> None:
        if self.ok:
            subprocess.run(["jcmd", str(self.pid), "JFR.stop", f"name={self.NAME}"], capture_output=True, check=False)

    def report(self, jvm_cpu_s: float, events: int) -> None:
        if not self.ok or not self.path.is_file():
            print("(no JVM profile: jcmd/jfr not found or the recording failed)")
            return
        threads: Counter = Counter()
        cmd = ["jfr", "print", "--events", "jdk.ExecutionSample", str(self.path)]
        out = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        for line in out.stdout:  # streamed: a 5-minute recording prints hundreds of MB
            if line.lstrip().startswith(b"sampledThread = "):
                threads[task_of(line.split(b'"')[1].decode(errors="replace"))] += 1
        out.wait()
        total = sum(threads.values())
        if not total:
            return
        print(f"Flink JVM CPU by task ({total:,} Java execution samples; GC and JIT threads are not sampled):")
        for name, n in threads.most_common(16):
            label = name if len(name) <= 80 else name[:77] + "..."
            print(f"  {n / total:>6.1%} {n / total * jvm_cpu_s / events * 1e6:>7.1f} µs/event  {label}")


def task_of(thread: str) -> str:
    """A Flink task's name from its thread's (without the subtask), or the kind of thread."""
    kinds = {
        "Source Data Fetcher": "Kafka source fetchers",
        "AsyncOperations": "checkpoint snapshots (async)",
        "kafka-producer-network-thread": "Kafka sink producers",
        "Flink-DispatcherRestEndpoint": "REST API and metrics",
        "flink-rest-server": "REST API and metrics",
        "flink-metrics": "REST API and metrics",
    }
    for prefix, kind in kinds.items():
        if thread.startswith(prefix):
            return kind
    name, _, sub = thread.rpartition(" (")
    return name if name and "/" in sub else "other JVM threads"


def source_lag(archive: Path, since_ms: int, every: int = 20) -> Counter:
    """ms from event time to the Flink source (the archive's `arrived_at`, read in the source's
    task), of every `every`-th archived line with an event time from since_ms, committed or in
    progress."""
    lags: Counter = Counter()
    for path in archive.rglob("*"):
        if not path.is_file() or path.name.startswith("_"):
            continue
        with path.open("rb") as f:
            for i, line in enumerate(f):
                if i % every == 0:
                    try:
                        row = json.loads(line)
                        if row["event_time"] >= since_ms:
                            lags[row["arrived_at"] - row["event_time"]] += 1
                    except (ValueError, KeyError, TypeError):
                        pass  # the last line of a file still being written
    return lags


def checkpoint_line(rest: FlinkRest, jid: str) -> str:
    s = rest.checkpoint_summary(jid)
    dur, size = s.get("end_to_end_duration", {}), s.get("checkpointed_size", s.get("state_size", {}))
    return (
        f"checkpoints: duration p50 {dur.get('p50', 0):,.0f} ms, max {dur.get('max', 0):,.0f} ms; "
        f"size p50 {size.get('p50', 0) / 1e6:,.1f} MB, max {size.get('max', 0) / 1e6:,.1f} MB"
    )


def part_live(rate: float, minutes: float, home: Path, profile: bool) -> None:
    from streaming.runner import feature_topics, run_job

    s = settings_for(home)
    seconds = minutes * 60
    print(f"\n== live: {rate:,.0f} events/s for {minutes:g} min through Kafka, a separate producer process")
    print(f"levers: {levers(s)}")
    print("producer: the Kafka client's defaults (linger 5 ms), as a shop's producer (bench/live_producer.py)")
    w = Watch(service_labels(s))
    ensure_topics(s, [s.kafka.events_topic], s.kafka.partitions)
    rest_port = free_port()
    rest = FlinkRest(f"127.0.0.1:{rest_port}")
    state: dict = {"lag_samples": []}

    def drive() -> None:
        try:
            deadline = time.monotonic() + 600
            while True:  # the job runs and its sources read: production can start
                try:
                    job = rest.job(PIPELINE) if rest.reachable() else None
                except Exception:
                    job = None
                if job and job["state"] == "RUNNING":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the job did not start within 10 minutes")
                time.sleep(1)
            time.sleep(5)
            labelled(w)
            jid = job["jid"]
            topics = feature_topics(s)
            online_topics = [s.kafka.features_topic_prefix + q.output for _, q in compiled_queries(s) if q.updating]
            jvm = next(pid for pid, name in w.usage.names.items() if name == "Flink JVM (mini-cluster)")
            report_path = s.home / "producer.json"
            report = report_path.open("wb")
            prod = subprocess.Popen(
                [sys.executable, "-m", "bench.live_producer", "--rate", str(rate)]
                + ["--seconds", str(LIVE_WARMUP_S + seconds), "--warmup", str(LIVE_WARMUP_S)],
                cwd=REPO,
                env=env_of(s),
                stdout=report,  # a file: its one line can outgrow a pipe that nobody reads until it exits
            )
            w.label(prod.pid, "producer (Python)")
            t0 = time.monotonic()
            ends: list = []
            next_lag = 0.0
            broker = next((pid for pid, name in w.usage.names.items() if name == SERVICE_NAMES["kafka"]), None)
            state["broker_rss"] = []  # (minute, MB) at each full minute of production after the warm-up
            while prod.poll() is None:
                t = time.monotonic() - t0
                if not ends and t >= LIVE_WARMUP_S:  # warmed up: what follows is measured
                    state["cpu_before"] = w.snapshot()
                    state["tasks_before"] = task_times(rest, jid)
                    state["profile"] = JvmProfile(jvm, s.home / "flink.jfr") if profile else None
                    state["timed_from_ms"] = int(time.time() * 1000)
                    state["broker_threads"] = thread_cpu_s(broker) if broker else {}
                    ends.append((t, topic_end(s, topics), topic_end(s, online_topics)))
                if broker and ends and t - LIVE_WARMUP_S >= 60 * (len(state["broker_rss"]) + 1):
                    state["broker_rss"].append((len(state["broker_rss"]) + 1, rss_mb(broker)))
                if t >= next_lag:
                    try:
                        m = rest.source_metrics(jid, ("pendingRecords",))
                    except Exception:
                        m = {}
                    pending = m.get("pendingRecords", {}).get("sum")
                    state["lag_samples"].append(
                        (
                            t,
                            None if pending is None else int(pending),
                            kafka_lag(s),
                            group_lag(s, f"{s.kafka.group_id}-online", online_topics),
                            group_lag(s, f"{s.kafka.group_id}-olap", topics),
                        )
                    )
                    if ends:
                        ends.append((t, topic_end(s, topics), topic_end(s, online_topics)))
                    next_lag += LAG_EVERY_S
                time.sleep(1)
            report.close()
            state["producer"] = json.loads(report_path.read_text().strip().splitlines()[-1])
            state["cpu_after"] = w.snapshot()
            if broker:  # each group of its threads after the warm-up
                after = thread_cpu_s(broker)
                state["broker_threads"] = {k: v - state["broker_threads"].get(k, 0.0) for k, v in after.items()}
            state["tasks_after"] = task_times(rest, jid)
            state["span"] = time.monotonic() - t0 - ends[0][0]
            if state["profile"]:
                state["profile"].stop()
            state["checkpoints"] = checkpoint_line(rest, jid)
            span = max(ends[-1][0] - ends[0][0], 1e-9)
            state["feature_rate"] = (ends[-1][1] - ends[0][1]) / span, (ends[-1][2] - ends[0][2]) / span
            time.sleep(10)  # drain
        except Exception as e:
            state["error"] = repr(e)
        try:  # the job ends as a deployment's does; run_job then stops the loaders
            rest.stop_with_savepoint(jid, (s.home / "savepoints").as_uri())
        except Exception:
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=drive, daemon=True).start()
    try:
        source = KafkaSource(s.kafka.events_topic, bootstrap(s), s.kafka.group_id, start="latest")
        summary = run_job(
            s, source, keep_services=True, measure_latency=LIVE_WARMUP_S, pipeline=PIPELINE, rest_port=rest_port
        )
        if "error" in state:
            print(f"the live run failed: {state['error']}")
            return
        p = state["producer"]
        measured = int(rate * seconds)  # the events after the warm-up
        print(
            f"produced {p['events']:,} events in {p['seconds']:.0f}s: {p['events'] / p['seconds']:,.0f} events/s "
            f"(target {rate:,.0f}); delivery failures {p['failed']}; the first {LIVE_WARMUP_S} s are a warm-up "
            "that no figure below counts (the JVMs compile the job's code then)"
        )
        lat = summary.online.latency_ms
        rows = [
            ("producer -> broker (produce() to ack)", quantiles(Counter({int(k): n for k, n in p["ack_ms"].items()}))),
            ("event time -> Flink source", quantiles(source_lag(s.archive_dir, state["timed_from_ms"]))),
        ]
        emit = quantiles(lat.get("event_to_emit", Counter()))
        to_redis = quantiles(lat.get("event_to_visible", Counter()))
        rows += [
            ("source -> feature emit (p50 difference)", [emit[0] - rows[1][1][0]] if emit and rows[1][1] else []),
            ("  event time -> feature emit", emit),
            ("feature emit -> online loader", quantiles(lat.get("emit_to_loader", Counter()))),
            ("online loader -> Redis visible", quantiles(lat.get("loader_to_visible", Counter()))),
            ("event time -> Redis visible", to_redis),
        ]
        print(f"latency per hop, ms ({sum(lat.get('event_to_visible', Counter()).values()):,} last_event_time updates)")
        print(f"{'hop':<40}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}")
        for name, q in rows:
            print(f"{name:<40}" + "".join(f"{v:>8.0f}" for v in q) if q else f"{name:<40}{'n/a':>8}")
        print(
            "(Flink source: the archive's arrived_at, taken in the source's task, of every 20th event;"
            " source -> emit: the median of event time -> feature emit less that of event time -> Flink source)"
        )
        lags = state["lag_samples"]
        print(f"Kafka lag over the run ({len(lags)} samples every {LAG_EVERY_S} s; the warm-up left out):")
        feature_rate, online_rate = state["feature_rate"]
        verdicts = {}
        for i, (name, per_s) in enumerate(
            [
                ("Flink source, pendingRecords", rate),
                ("Flink's group, committed at checkpoints", rate),
                ("online loader's group", online_rate),
                ("OLAP loader's group", feature_rate),
            ],
            start=1,
        ):
            verdicts[name] = growth([(x[0], x[i]) for x in lags], per_s, LIVE_WARMUP_S)
            print(f"  {name:<42} {verdicts[name]}")
        print_task_times(state["tasks_before"], state["tasks_after"], state["span"])
        print(state["checkpoints"])
        if prof := state["profile"]:
            prof.report(state["cpu_after"][prof.pid] - state["cpu_before"][prof.pid], measured)
        if state.get("broker_rss"):
            print("broker RSS: " + ", ".join(f"{mb:,.0f} MB at {m} min" for m, mb in state["broker_rss"]))
        if threads := state.get("broker_threads"):
            top = sorted(threads.items(), key=lambda kv: -kv[1])[:6]
            print(
                "broker threads, µs CPU/event after the warm-up: "
                + ", ".join(f"{name} {1e6 * cpu / measured:.1f}" for name, cpu in top)
                + f" (of all: the JIT {1e6 * jit_share(threads) / measured:.1f})"
            )
        print("process CPU after the warm-up, and peak RSS over the whole run:")
        w.report(since=state["cpu_before"], until=state["cpu_after"], events=measured)
        cpu = w.usage.cpu_by_name(state["cpu_before"], state["cpu_after"])
        result = {
            "rate": rate,
            "achieved": p["events"] / p["seconds"],
            "to_redis_ms": to_redis,
            "cpu_us": {name: c / measured * 1e6 for name, c in cpu.items()},
            "lag_flat": all(v.startswith("steady") for v in verdicts.values()),
        }
        (s.home.parent / f"live-{rate:.0f}.json").write_text(json.dumps(result))
    finally:
        stop_services(s)


RATE_COLUMNS = {  # column -> process name in the live part's CPU figures
    "Flink": "Flink JVM (mini-cluster)",
    "broker": SERVICE_NAMES["kafka"],
    "producer": "producer (Python)",
    "online loader": "lf-load-online",
}


def print_rate_table(results: Path) -> None:
    """The live runs side by side: latency, CPU per event per process, and the lag's verdict."""
    runs = sorted((json.loads(f.read_text()) for f in results.glob("live-*.json")), key=lambda r: r["rate"])
    if not runs:
        return
    print("\n== latency versus rate (after the warm-up)")
    heads = ["events/s", "achieved", "p50 ms", "p99 ms", "max ms", *RATE_COLUMNS, "rest", "all µs", "lag"]
    print("".join(f"{h:>14}" for h in heads))
    for r in runs:
        cpu = r["cpu_us"]
        named = [cpu.get(proc, 0.0) for proc in RATE_COLUMNS.values()]
        rest = sum(cpu.values()) - sum(named)
        latency = r["to_redis_ms"] or [float("nan")] * 4
        cells = [f"{r['rate']:,.0f}", f"{r['achieved']:,.0f}", *(f"{latency[i]:,.0f}" for i in (0, 2, 3))]
        cells += [f"{v:,.1f}" for v in [*named, rest, sum(cpu.values())]]
        cells.append("flat" if r["lag_flat"] else "GREW")
        print("".join(f"{c:>14}" for c in cells))
    print("(event -> Redis of last_event_time; CPU in µs per event; lag: every consumer group's Kafka lag)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000, help="replay and flink: generated events")
    ap.add_argument("--rate", type=float, nargs="+", default=[10_000, 20_000], help="live: events/s, one run each")
    ap.add_argument("--minutes", type=float, default=5, help="live: length of each run")
    ap.add_argument("--parts", nargs="+", default=["replay", "flink", "live"], choices=["replay", "flink", "live"])
    ap.add_argument(
        "--profile", action="store_true", help="live: the Flink JVM's CPU per task (Java Flight Recorder; costs CPU)"
    )
    ap.add_argument("--part", help=argparse.SUPPRESS)  # a part in this process (the parent runs one per process)
    ap.add_argument("--home", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:
        home = Path(args.home)
        if args.part == "replay":
            part_replay(args.events, home)
        elif args.part == "flink":
            part_flink(args.events, home)
        else:
            part_live(args.rate[0], args.minutes, home, args.profile)
        return
    print("hardware:", hardware(), "| load average before:", load_average())
    with tempfile.TemporaryDirectory(prefix="lf-bench-") as tmp:
        todo = [(p, None) for p in args.parts if p != "live"]
        todo += [("live", r) for r in args.rate] if "live" in args.parts else []
        for i, (part, rate) in enumerate(todo):
            cmd = [sys.executable, __file__, "--part", part, "--home", str(Path(tmp) / f"{i}-{part}")]
            cmd += ["--events", str(args.events), "--minutes", str(args.minutes)] + ["--profile"] * args.profile
            cmd += ["--rate", str(rate)] if rate else []
            subprocess.run(cmd, check=False)
        print_rate_table(Path(tmp))
    print("load average after:", load_average())


if __name__ == "__main__":
    main()
