"""Benchmark of the batch layer: a whole backfill (reconcile the 7 streaming features of
every day, daily partials, the two 30-day features, ClickHouse and Redis loads) over a month
of generated events, by `lambda-features batch backfill` (Spark) and by the same computation
in DuckDB (bench/batch_duckdb.py) on the same archive files, in the same run.

Prints wall time, CPU time and peak RSS (every process of each run: Python, the Spark JVM),
the ratio, the load average and the hardware; then checks that both lakes hold equal rows.
The archive is generated once into --data and reused (bench/batch_archive.py).
    .venv/bin/python bench/batch_bench.py [--events 10000000] [--days 30] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.batch_archive import write_generated_archive  # noqa: E402
from bench.machine import TreeUsage, hardware, load_average, watch  # noqa: E402
from common.ports import free_port  # noqa: E402
from common.repository import load_features  # noqa: E402
from common.services import clickhouse_service, redis_service  # noqa: E402
from common.settings import load_settings  # noqa: E402
from features.generator import GeneratorConfig  # noqa: E402

START = date(2026, 1, 1)


def archive(data: Path, events: int, days: int) -> Path:
    """The generated archive for (events, days), written once and reused."""
    folder = data / f"archive-{events}-{days}d"
    if not (folder / "_complete").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.monotonic()
        cfg = GeneratorConfig(users=100_000, items=50_000, events_per_second=events / (days * 86_400))
        late = write_generated_archive(folder, cfg, events)
        (folder / "_complete").write_text(json.dumps({"events": events, "late": late}))
        print(f"generated {events:,} events ({late:,} late) in {time.monotonic() - t0:.0f}s -> {folder}")
    return folder


def fresh_home(data: Path, name: str, archive_dir: Path) -> dict[str, str]:
    home = data / name
    shutil.rmtree(home, ignore_errors=True)
    (home / "lake").mkdir(parents=True)
    (home / "lake" / "archive").symlink_to(archive_dir)
    return {
        "LAMBDA_FEATURES_HOME": str(home),
        "LAMBDA_FEATURES_REDIS__LOCAL_PORT": str(free_port()),
        "LAMBDA_FEATURES_KAFKA__LOCAL_PORT": str(free_port()),
        "LAMBDA_FEATURES_KAFKA__LOCAL_CONTROLLER_PORT": str(free_port()),
        "LAMBDA_FEATURES_CLICKHOUSE__LOCAL_PORT": str(free_port()),
        "LAMBDA_FEATURES_MONITORING__ENABLED": "false",
    }


def measured(cmd: list[str], env: dict[str, str]) -> dict:
    """Run cmd with these platform settings (and a local Redis); wall, CPU, RSS of its tree.
    The ClickHouse service that the run starts itself (chDB behind HTTP) is stopped after it."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("LAMBDA_FEATURES_")} | env
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        settings = load_settings()
        redis, clickhouse = redis_service(settings), clickhouse_service(settings)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    redis.start()
    try:
        usage, stop = TreeUsage(), threading.Event()
        load_before = load_average()
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, cwd=REPO, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        thread = watch(p.pid, usage, stop)
        try:
            out = p.communicate()[0]
        finally:
            if p.poll() is None:
                p.terminate()
                p.wait()
        wall = time.monotonic() - t0
        stop.set()
        thread.join()
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{out[-3000:]}")
        return {
            "wall_s": wall,
            "cpu_s": sum(usage.cpu_s.values()),
            "peak_rss_mb": usage.peak_by_name(),
            "load": f"{load_before} -> {load_average()}",
            "out": out,
        }
    finally:
        redis.stop()
        clickhouse.stop()


def compare_lakes(a: Path, b: Path) -> dict[str, str]:
    """Per feature: rows in each lake, and rows of one missing from the other (both ways)."""
    import duckdb

    con = duckdb.connect()
    out = {}
    for f in load_features(load_settings()).features:
        if not all((lake / f.name).is_dir() for lake in (a, b)):  # the DuckDB side has no catalogue features
            out[f.name] = "only in " + ", ".join(str(lake) for lake in (a, b) if (lake / f.name).is_dir())
            continue
        cols = ", ".join(
            f"epoch_ms({c.name}) AS {c.name}" if c.flink.startswith("TIMESTAMP") else f'"{c.name}"' for c in f.columns
        )
        a_rel, b_rel = (
            f"(SELECT {cols} FROM read_parquet('{lake}/{f.name}/*/*.parquet', hive_partitioning = false))"
            for lake in (a, b)
        )
        n_a, n_b = (con.execute(f"SELECT count(*) FROM {r}").fetchone()[0] for r in (a_rel, b_rel))
        only_a, only_b = (
            con.execute(f"SELECT count(*) FROM ({x} EXCEPT ALL {y})").fetchone()[0]
            for x, y in ((a_rel, b_rel), (b_rel, a_rel))
        )
        out[f.name] = f"{n_a:,} / {n_b:,} rows" + ("" if only_a == only_b == 0 else f", DIFFER: {only_a} / {only_b}")
    return out


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the Redis it started
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "lf-batch-bench")
    ap.add_argument("--memory", default="3g", help="Spark driver heap, and DuckDB's memory limit")
    ap.add_argument("--skip-spark", action="store_true")
    ap.add_argument("--skip-duckdb", action="store_true")
    a = ap.parse_args()
    arch = archive(a.data, a.events, a.days)
    end = START + timedelta(days=a.days - 1)
    size_gb = sum(p.stat().st_size for p in arch.rglob("part-*")) / 1e9
    print(f"{hardware()}; archive {a.events:,} events, {size_gb:.1f} GB JSON lines, {START}..{end}")
    results = {}
    runs = {
        "spark": ["-m", "cli.main", "batch", "backfill", "--start", str(START), "--end", str(end)],
        "duckdb": ["bench/batch_duckdb.py", "--start", str(START), "--end", str(end)],
    }
    for name, args in runs.items():
        if getattr(a, f"skip_{name}"):
            continue
        env = fresh_home(a.data, f"home-{name}", arch) | {"LAMBDA_FEATURES_BATCH__DRIVER_MEMORY": a.memory}
        r = results[name] = measured([sys.executable, *args], env)
        (a.data / f"{name}.log").write_text(r["out"])
        rss = ", ".join(f"{k} {v / 1024:.2f} GB" for k, v in sorted(r["peak_rss_mb"].items()) if v > 50)
        print(f"{name:7s} wall {r['wall_s']:7.1f}s  CPU {r['cpu_s']:7.1f}s  peak RSS {rss}  load {r['load']}")
        if name == "duckdb":
            print("        phases:", r["out"].strip().splitlines()[-1])
    if len(results) == 2:
        s, d = results["spark"], results["duckdb"]
        print(f"ratio Spark/DuckDB: wall {s['wall_s'] / d['wall_s']:.2f}x, CPU {s['cpu_s'] / d['cpu_s']:.2f}x")
        lakes = [a.data / f"home-{n}" / "lake" / "features" for n in ("spark", "duckdb")]
        for feature, verdict in compare_lakes(*lakes).items():
            print(f"  {feature:20s} Spark / DuckDB: {verdict}")


if __name__ == "__main__":
    main()
