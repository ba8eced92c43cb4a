"""Benchmark of the online feature API: `lambda-features serve` over a local redis-server,
loaded by wrk (Debian's package, a separate process) on loopback.

0. single-user lookups at 100/s, the latency a light load gets;
1. single-user lookups (GET /v1/users/{id}/features, all 5 features) at a fixed rate;
2. batches (POST /v1/features, 100 random users, all 5 features) at a fixed rate;
3. each of them as fast as wrk's connections go, for the ceiling.
With --serving-log, instead: single-user lookups at --rate with the serving log off, then on
(every request logged to the local Kafka broker), alternating `--rounds` times, each round a
fresh server: what the log adds to the latency. A logged load of --broker-warmup seconds goes
first, unmeasured, while the broker's JIT compiles.
Users are random over 110% of the stored ones (about 9% NOT_FOUND). Reports wrk's latency
percentiles (from a request's send to its whole answer), the server's CPU, the answers by
status, the hardware, the load average before and after, and the CPU pressure of each run
(the share of time some runnable task waited for a CPU: other work on the machine shows there).
    .venv/bin/python bench/serve_bench.py [--users 100000] [--seconds 30] [--rate 1000] [--batch-rate 100]
    .venv/bin/python bench/serve_bench.py --serving-log [--rounds 2] [--rate 1000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import TreeUsage, cpu_waiting_us, hardware, load_average, watch  # noqa: E402
from common.services import kafka_service, redis_service  # noqa: E402
from tests.conftest import free_port, isolated  # noqa: E402
from tests.support.serving_env import publish_batch, server, stream_rows, write_stream  # noqa: E402

LUA = Path(__file__).with_name("serve_load.lua")
BRANDS = ["acme", "globex", "hooli", "initech", "umbrella", "stark"]


def fill(settings, users: int) -> None:
    """Every user with all five features, through the writers' encodings."""
    now = int(time.time() * 1000)
    rows = []
    for u in range(users):
        searches = [f"query {u % 97} {k}" for k in range(u % 11)]
        rows += stream_rows(u, now - (u % 3600) * 1000, cart=f"{u % 500}.{u % 100:02d}", searches=searches)
    write_stream(settings, rows)
    day = datetime.now(UTC).date() - timedelta(days=1)
    brands = {u: BRANDS[u % 6 : u % 6 + 1 + u % 3] for u in range(users)}
    stats = {u: (u % 9, f"{u % 900}.{u % 100:02d}", u % 7, 1 + u % 30) for u in range(users)}
    publish_batch(settings, day, brands, stats)


def wrk(url: str, mode: str, users: int, batch: int, rate: float, seconds: int, connections: int) -> dict:
    threads = 1  # one core for wrk at most; the server gets the other
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(LUA), url]
    cmd += ["--", mode, str(users), str(batch), str(rate / threads), "42"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result = json.loads(next(ln for ln in out.splitlines() if ln.startswith("{")))
    result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def statuses(url: str) -> Counter:
    """Requests answered so far, by HTTP status, from the server's own /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    out: Counter = Counter()
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        if family.name == "lf_serving_requests":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels["route"].startswith("/v1/"):
                    out[sample.labels["status"]] += int(sample.value)
    return out


def run(url: str, server_pid: int, **kw) -> dict:
    usage, stop = TreeUsage(), threading.Event()
    usage.sample(server_pid)
    before, answered, waiting = sum(usage.cpu_s.values()), statuses(url), cpu_waiting_us()
    t = watch(server_pid, usage, stop)
    result = wrk(url, **kw)
    stop.set()
    t.join()
    usage.sample(server_pid)
    seconds = result["duration_us"] / 1e6
    result["cpu_pressure"] = (cpu_waiting_us() - waiting) / result["duration_us"] if waiting is not None else None
    result["server_cpu"] = (sum(usage.cpu_s.values()) - before) / seconds
    result["cpu_ms_per_request"] = result["server_cpu"] * seconds * 1000 / max(result["requests"], 1)
    result["statuses"] = dict(statuses(url) - answered)
    return result


def show(name: str, r: dict) -> None:
    errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    print(
        f"{name:<34} {r['rate']:>8,.0f} req/s  p50 {r['p50_us'] / 1000:6.2f}  p90 {r['p90_us'] / 1000:6.2f}  "
        f"p99 {r['p99_us'] / 1000:6.2f}  p99.9 {r['p999_us'] / 1000:6.2f}  max {r['max_us'] / 1000:7.2f} ms  "
        f"server CPU {r['server_cpu']:.0%} ({r['cpu_ms_per_request']:.2f} ms/request)  statuses {r['statuses']}  "
        f"errors {errors}  CPU pressure {r['cpu_pressure'] or 0:.0%}",
        flush=True,
    )


def serving_log(env: dict[str, str], home: Path, args) -> None:
    """The single-user load with the serving log off and on, alternating."""
    users = int(args.users * 1.1)
    common = {"users": users, "batch": 1, "seconds": args.seconds}
    # the broker compiles its code for its first minutes under load: a logged load first,
    # unmeasured, so that its JIT does not share the cores with the measured rounds
    with server(env | {"LAMBDA_FEATURES_SERVING__LOG_SAMPLE_RATE": "1"}, free_port(), home / "serve.log") as s:
        wrk(s.url, "one", users=users, batch=1, rate=args.rate, seconds=args.broker_warmup, connections=16)
    for k in range(args.rounds):
        for rate in ("0", "1"):
            with server(env | {"LAMBDA_FEATURES_SERVING__LOG_SAMPLE_RATE": rate}, free_port(), home / "serve.log") as s:
                wrk(s.url, "one", users=users, batch=1, rate=0, seconds=3, connections=8)  # warm-up
                r = run(s.url, s.pid, mode="one", rate=args.rate, connections=16, **common)
                logged = httpx.get(f"{s.url}/metrics").text
            dropped = sum(
                float(ln.split()[-1]) for ln in logged.splitlines() if ln.startswith("lf_serving_log_dropped_total")
            )
            show(f"round {k + 1}, log {'on ' if rate == '1' else 'off'} (dropped {dropped:.0f})", r)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--rate", type=float, default=1000, help="single-user lookups/s")
    ap.add_argument("--batch-rate", type=float, default=100, help="100-user batches/s")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--serving-log", action="store_true", help="the log off against on, at --rate")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--broker-warmup", type=int, default=90, help="--serving-log: seconds of logged load first")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: `apt-get install wrk` (make setup does it)")
    print(hardware())
    print(f"load average before: {load_average()}")
    home = Path(tempfile.mkdtemp(prefix="lf-serve-bench-"))
    settings, env = isolated(home / "home", LAMBDA_FEATURES_SERVING__WORKERS=str(args.workers))
    redis, kafka = redis_service(settings), kafka_service(settings)
    try:
        redis.start()
        t0 = time.monotonic()
        fill(settings, args.users)
        print(f"{args.users:,} users written in {time.monotonic() - t0:.1f} s; {args.workers} server worker(s)")
        if args.serving_log:
            kafka.start()
            return serving_log(env, home, args)
        with server(env, free_port(), home / "serve.log") as served:
            url, pid = served.url, served.pid
            users = int(args.users * 1.1)
            common = {"users": users, "batch": args.batch, "seconds": args.seconds}
            wrk(url, "one", users=users, batch=1, rate=0, seconds=3, connections=8)  # warm-up
            # a light load first: the latency the machine's other work leaves, whatever the server does
            show("one user, 100/s", run(url, pid, mode="one", rate=100, connections=4, **common))
            show(f"one user, {args.rate:,.0f}/s", run(url, pid, mode="one", rate=args.rate, connections=16, **common))
            show(
                f"{args.batch} users, {args.batch_rate:,.0f}/s",
                run(url, pid, mode="many", rate=args.batch_rate, connections=16, **common),
            )
            show("one user, as fast as it goes", run(url, pid, mode="one", rate=0, connections=16, **common))
            show(f"{args.batch} users, as fast as it goes", run(url, pid, mode="many", rate=0, connections=8, **common))
    finally:
        kafka.stop()
        redis.stop()
        shutil.rmtree(home, ignore_errors=True)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
