"""`lambda-features training-set` on a spine of 1M rows over a generated archive: the wall
time of the whole command (JVM start included) in both modes, with the load average.
The archive is written straight into its layout (bench/batch_archive.py) and reused."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.batch_archive import write_generated_archive  # noqa: E402
from bench.machine import hardware, load_average  # noqa: E402
from features.generator import GeneratorConfig, zipf_ids  # noqa: E402

STREAM = "cart_amount,last_searches,last_event_time,category_clicks_1h,user_sessions,uv_1m,hot_items_5m"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--spine", type=int, default=1_000_000)
    ap.add_argument("--memory", default="3g")
    ap.add_argument("--archive-only", action="store_true", help="write the archive and stop")
    ap.add_argument("--modes", default="time,known", help="time (by event time), known (--as-known-at), or both")
    a = ap.parse_args()
    root = Path(tempfile.gettempdir()) / "lf-training-bench"
    home = root / f"home-{a.events}-{a.days}"
    cfg = GeneratorConfig(seed=1, users=100_000, items=50_000, events_per_second=a.events / (a.days * 86400))
    if not (home / "_complete").is_file():
        shutil.rmtree(home, ignore_errors=True)
        t0 = time.monotonic()
        late = write_generated_archive(home / "lake" / "archive", cfg, a.events)
        (home / "_complete").write_text("ok")
        print(f"archive: {a.events:,} events ({late:,} late) over {a.days} days in {time.monotonic() - t0:.0f}s")
    if a.archive_only:
        return
    rng = np.random.default_rng(2)
    users = zipf_ids(rng, cfg.zipf_a, cfg.users, a.spine)
    span = a.days * 86_400_000
    ts = cfg.start_ms + 86_400_000 + rng.integers(0, span - 86_400_000, a.spine)
    spine = root / f"spine-{a.spine}.parquet"
    pq.write_table(pa.table({"user_id": users, "ts": ts, "label": rng.integers(0, 2, a.spine)}), spine)
    env = {**os.environ, "LAMBDA_FEATURES_HOME": str(home), "LAMBDA_FEATURES_BATCH__DRIVER_MEMORY": a.memory}
    print(hardware(), "| load before:", load_average())
    runs = {
        "time": ("by event time", STREAM, []),
        "known": ("as known at ts", STREAM + ",top_brands_30d,purchase_stats_30d", ["--as-known-at"]),
    }
    for mode, features, extra in (runs[m] for m in a.modes.split(",")):
        out = root / "out.parquet"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.monotonic()
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "training-set",
                "--spine",
                str(spine),
                "--features",
                features,
                "--out",
                str(out),
                *extra,
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.monotonic() - t0
        if p.returncode:
            sys.exit(p.stdout[-3000:] + p.stderr[-3000:])
        rows = pq.ParquetDataset(out).read(columns=["label"]).num_rows
        times = [ln for ln in p.stdout.splitlines() if "feature " in ln or "seconds:" in ln]
        print(f"{mode}: {rows:,} rows, {len(features.split(','))} features, {wall:.0f}s wall; load {load_average()}")
        print("\n".join(times))
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
