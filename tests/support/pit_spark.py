"""Several Spark batch steps in one Spark process (one JVM start): the 30-day lake for some
days, then training sets. Run as `python -m tests.support.pit_spark JOBS.json`, with the platform's
settings in the environment, so Spark never shares the test's process."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import orjson

from batch import features_30d
from batch.spark import spark_session
from batch.training_set import build
from common.settings import load_settings


def main(jobs_file: str) -> None:
    jobs = orjson.loads(Path(jobs_file).read_bytes())
    settings = load_settings()
    if jobs.get("lake_days"):
        days = [date.fromisoformat(d) for d in jobs["lake_days"]]
        features_30d.compute_and_write(spark_session(settings), settings, days)
    for b in jobs.get("builds", []):
        build(settings, Path(b["spine"]), b["features"], Path(b["out"]), b["as_known_at"])


if __name__ == "__main__":
    main(sys.argv[1])
