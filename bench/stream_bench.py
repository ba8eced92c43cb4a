"""Benchmark of the whole stream job (every feature, every sink, embedded defaults).

1. throughput: N generated events replayed through Flink, Kafka, the loader, Redis and
   chDB; events/s from job submission until every sink holds everything.
2. latency: a live Kafka stream at a fixed rate; p50/p99 from an event's creation (its
   event time is the wall clock when produced) to its user's online-store update.

Prints the hardware and peak RSS of the Python process and the Flink JVM.
    .venv/bin/python bench/stream_bench.py [--events 1000000] [--rate 20000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine import hardware  # noqa: E402
from common.clickhouse import close_clients  # noqa: E402
from common.kafka import bootstrap, ensure_topics  # noqa: E402
from common.services import clickhouse_service, local_services  # noqa: E402
from common.settings import Settings, load_settings  # noqa: E402
from features.generator import GeneratorConfig, generate  # noqa: E402
from streaming.job import FileSource, KafkaSource  # noqa: E402
from streaming.runner import run_job  # noqa: E402
from streaming.staging import StagedWriter, StageResult  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb() -> dict[str, float]:
    """VmHWM of this process and of its child processes (the Flink JVM)."""
    out = {}
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(") ")[1].split()
            pid = int(stat.parent.name)
            if pid != me and int(fields[1]) != me:
                continue
            status = (stat.parent / "status").read_text()
            name = next(ln.split()[1] for ln in status.splitlines() if ln.startswith("Name:"))
            hwm = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmHWM:"))
            out[f"{name}[{pid}]"] = hwm / 1024
        except (FileNotFoundError, StopIteration, IndexError, ValueError):
            continue
    return out


def settings_for(home: Path) -> Settings:
    return load_settings(
        home=home,
        redis={"local_port": free_port()},
        kafka={"local_port": free_port()},
        clickhouse={"local_port": free_port()},
        monitoring={"enabled": False},
    )


def throughput(events: int, home: Path) -> None:
    s = settings_for(home)
    staged = s.staging_dir / "bench.csv"
    t0 = time.monotonic()
    with StagedWriter(staged) as w:
        for i, e in enumerate(generate(GeneratorConfig(seed=1), events), start=1):
            w.write(0, i, e)
    staging = time.monotonic() - t0
    summary = run_job(s, FileSource(staged), StageResult(staged, events=events))
    rss = peak_rss_mb()
    close_clients()
    clickhouse_service(s).stop()  # the shared service outlives jobs
    print(f"\n== throughput: {events:,} generated events, all 7 features, every sink")
    print(f"staging (Python, generator -> CSV): {staging:.1f}s ({events / staging:,.0f} events/s)")
    print(
        f"stream job incl. JVM start, until every sink holds everything: {summary.seconds:.1f}s "
        f"-> {summary.rate:,.0f} events/s"
    )
    print(f"feature changes through the loader: {summary.loader_messages:,}; late events: {summary.late:,}")
    print("peak RSS MB: " + ", ".join(f"{k} {v:,.0f}" for k, v in rss.items()))


def latency(rate: float, seconds: float, home: Path) -> None:
    s = settings_for(home)
    for svc in local_services(s):
        svc.start()
    try:
        ensure_topics(s, [s.kafka.events_topic], s.kafka.partitions)
        count = int(rate * seconds)
        state: dict[str, float] = {}

        def produce() -> None:
            """A separate producer process, as in production (no GIL shared with the loader)."""
            time.sleep(25)  # let the job start and reach the end of the (empty) topic
            env = os.environ | {
                "LAMBDA_FEATURES_HOME": str(s.home),
                "LAMBDA_FEATURES_KAFKA__LOCAL_PORT": str(s.kafka.local_port),
            }
            started = time.monotonic()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cli.main",
                    "generate",
                    "--kafka",
                    "--live",
                    "--count",
                    str(count),
                    "--rate",
                    str(rate),
                    "--seed",
                    "2",
                ],
                env=env,
                cwd=REPO,
                check=True,
                capture_output=True,
            )
            state["achieved"] = count / (time.monotonic() - started)
            time.sleep(5)
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=produce, daemon=True).start()
        source = KafkaSource(s.kafka.events_topic, bootstrap(s), s.kafka.group_id, start="earliest")
        summary = run_job(s, source, keep_services=True, measure_latency=True)
        lat = sorted(summary.latencies_ms)
        close_clients()
        print(
            f"\n== latency: {count:,} live events at {state.get('achieved', 0):,.0f} events/s "
            f"(target {rate:,.0f}), event creation -> Redis update of last_event_time"
        )
        if lat:
            q = statistics.quantiles(lat, n=100)
            print(f"updates measured: {len(lat):,}; p50 {q[49]:.0f} ms, p99 {q[98]:.0f} ms, max {lat[-1]:.0f} ms")
    finally:
        for svc in local_services(s):
            svc.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=20_000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--skip-latency", action="store_true")
    args = ap.parse_args()
    print("hardware:", hardware())
    with tempfile.TemporaryDirectory(prefix="lf-bench-") as tmp:
        throughput(args.events, Path(tmp) / "throughput")
        if not args.skip_latency:
            latency(args.rate, args.seconds, Path(tmp) / "latency")


if __name__ == "__main__":
    main()
