"""The SparkSession: local[*] by default, a cluster through the settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from common.errors import PlatformError
from common.settings import Settings


def spark_session(settings: Settings):  # -> pyspark.sql.SparkSession
    from pyspark.sql import SparkSession

    tmp = settings.home / "tmp" / "spark"
    tmp.mkdir(parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.appName("lambda-features-batch")
        .master(settings.batch.master)
        .config("spark.driver.memory", settings.batch.driver_memory)
        .config("spark.sql.session.timeZone", "UTC")  # to_date and windows in UTC
        .config("spark.ui.enabled", "false")
        .config("spark.local.dir", str(tmp))
        .config("spark.sql.shuffle.partitions", str(settings.batch.shuffle_partitions))
    )
    if settings.batch.master.startswith("local"):
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        return builder.getOrCreate()
    except Exception as e:
        raise PlatformError(
            f"Spark did not start: {str(e).splitlines()[0][:300]}",
            "check that Java 17 is installed (java -version) and LAMBDA_FEATURES_BATCH__MASTER",
        ) from None


def write_parquet(jobs: list[tuple[object, Path]], threads: int = 3) -> None:
    """Write each DataFrame to its folder (replacing it) as concurrent Spark jobs: a day's
    small queries have many one-task stages, and concurrent jobs keep every core busy."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for done in [pool.submit(lambda j: j[0].write.mode("overwrite").parquet(str(j[1])), job) for job in jobs]:
            done.result()
