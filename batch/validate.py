"""Spark's check of a feature repository: every query the batch layer compiles for each feature
is analysed (not run) over an empty archive, the way a run chains them, so a filter or expression
Spark SQL rejects is reported with Spark's message, per feature.

`python -m batch.validate` prints the problems as JSON (a process of its own: one JVM)."""

from __future__ import annotations

import sys

import orjson

from batch.archive import empty_events
from batch.reconcile import STATE_DAYS
from batch.spark import spark_session
from batch.sql import merge_sql, partial_sql, reduce_sql, spark_sql, spread_sql
from common.errors import engine_message
from common.repository import load_features
from common.settings import Settings, load_settings
from features.definitions import Feature

DAY = "2026-01-01"  # any day: nothing is read


def _analyse(spark, settings: Settings, f: Feature) -> None:
    """The feature's queries, each analysed by spark.sql, over the views a run gives them."""
    empty_events(spark, settings).createOrReplaceTempView("events")
    if f.layer == "batch":
        spark.sql(partial_sql(f)).createOrReplaceTempView("daily")
        spark.sql(spread_sql("daily", "dt", f.aggregation.days, DAY, DAY)).createOrReplaceTempView("partials")  # type: ignore[union-attr]
        spark.sql(merge_sql(f)).schema  # noqa: B018 (analysis only)
        spark.sql(spark_sql(f, DAY)).schema  # noqa: B018
    elif f.windowed:
        spark.sql(spark_sql(f)).schema  # noqa: B018
    else:
        spark.sql(reduce_sql(f)).drop("_rn").createOrReplaceTempView("reduced")
        spark.sql(spread_sql("reduced", "dt", STATE_DAYS, DAY, DAY)).drop("dt").createOrReplaceTempView("events")
        spark.sql(spark_sql(f, by=("as_of",))).schema  # noqa: B018


def check(settings: Settings) -> dict[str, str]:
    """Feature -> Spark's message, for every feature Spark SQL rejects."""
    spark = spark_session(settings)
    problems = {}
    for f in load_features(settings).features:
        try:
            _analyse(spark, settings, f)
        except Exception as e:  # AnalysisException, ParseException
            problems[f.name] = engine_message(e)
    return problems


def main() -> None:
    sys.stdout.buffer.write(orjson.dumps({"problems": check(load_settings())}) + b"\n")


if __name__ == "__main__":
    main()
