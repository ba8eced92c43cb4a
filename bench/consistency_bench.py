"""The daily consistency job (`lambda-features consistency`) on a day of logged feature values:
its wall time from the JVM's start, split into its steps, the peak memory, the hardware and
the load average.

A generated archive (bench/batch_archive.py) stands for the platform's events, and a serving
log of --requests requests on its last day, one value per online feature each (5 features:
1M values for 200,000 requests), is written straight into the log's archive layout
(batch/serving_log.py), as the archiver would. The served values are all NOT_FOUND: what the
job costs is recomputing every request as known at its time; the plain-Python comparison is
timed apart. Both are generated once into $TMPDIR/lf-consistency-bench and reused.
    .venv/bin/python bench/consistency_bench.py [--events 2000000] [--days 7] [--requests 200000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.batch_archive import write_generated_archive  # noqa: E402
from bench.machine import TreeUsage, hardware, load_average, watch  # noqa: E402
from features.generator import GeneratorConfig, zipf_ids  # noqa: E402


def write_serving_log(settings, features: list[str], cfg: GeneratorConfig, day, requests: int) -> int:
    """One NOT_FOUND value per feature per request, Zipf users, times uniform over `day`."""
    from batch import serving_log

    rng = np.random.default_rng(3)
    users = zipf_ids(rng, cfg.zipf_a, cfg.users, requests)
    start = int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)
    at = np.sort(start + rng.integers(0, 86_400_000, requests))
    n = requests * len(features)
    table = pa.table(
        {
            "requested_at": np.repeat(at, len(features)),
            "user_id": np.repeat(users, len(features)),
            "feature": features * requests,
            "status": ["NOT_FOUND"] * n,
            "value": pa.nulls(n, pa.string()),
            "time": pa.nulls(n, pa.string()),
            "src_part": np.zeros(n, dtype=np.int32),
            "src_off": np.arange(n, dtype=np.int64),
        },
        schema=serving_log.schema(),
    )
    folder = serving_log.day_dir(settings, day)
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "part-0-0.parquet")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--memory", default="3g", help="the Spark driver's heap")
    ap.add_argument("--write-only", action="store_true", help="write the archive and the log, then stop")
    a = ap.parse_args()
    home = Path(tempfile.gettempdir()) / "lf-consistency-bench" / f"home-{a.events}-{a.days}-{a.requests}"
    from common.repository import load_features
    from tests.conftest import isolated

    settings, _ = isolated(home, LAMBDA_FEATURES_BATCH__DRIVER_MEMORY=a.memory)  # its services on free ports
    cfg = GeneratorConfig(seed=1, users=100_000, items=50_000, events_per_second=a.events / (a.days * 86400))
    day = (datetime.fromtimestamp(cfg.start_ms / 1000, UTC) + timedelta(days=a.days - 1)).date()
    features = sorted(f.name for f in load_features(settings).features if f.online_column)
    if not (home / "_complete").is_file():
        shutil.rmtree(home, ignore_errors=True)
        t0 = time.monotonic()
        late = write_generated_archive(settings.archive_dir, cfg, a.events)
        values = write_serving_log(settings, features, cfg, day, a.requests)
        (home / "_complete").write_text("ok")
        print(
            f"archive: {a.events:,} events ({late:,} late) over {a.days} days; serving log of {day}: {values:,} values"
        )
        print(f"  written in {time.monotonic() - t0:.0f}s")
    if a.write_only:
        return
    print(hardware(), "| load average before:", load_average())
    print(f"{day}: {a.requests:,} requests x {len(features)} features ({', '.join(features)})")

    from batch.serving_consistency import compare
    from common.services import local_services

    usage, stop = TreeUsage(labels={os.getpid(): "bench (Spark driver)"}), threading.Event()
    sampler = watch(os.getpid(), usage, stop)
    t0 = time.monotonic()
    try:
        run = compare(settings, day)
    finally:
        wall = time.monotonic() - t0
        stop.set()
        sampler.join()
        for svc in local_services(settings):
            svc.stop()
    values = sum(fc.counts["values"] for fc in run.features.values())
    print(f"consistency: {values:,} values of {run.requests:,} requests in {wall:.0f}s wall (JVM start included)")
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in run.seconds.items())
    print(f"  steps: {steps}")
    peak, cpu = usage.peak_by_name(), usage.cpu_by_name()
    print("  " + ", ".join(f"{n}: {cpu.get(n, 0):,.0f} CPU s, peak RSS {mb:,.0f} MB" for n, mb in peak.items()))
    print("load average after:", load_average())


if __name__ == "__main__":
    main()
