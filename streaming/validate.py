"""Flink's check of a feature repository, without running anything: every statement of the
stream job is planned (EXPLAIN), so a filter or expression Flink SQL rejects is reported with the
planner's message, per feature. The job's compiled plan (streaming/compiled_plan.py) gives each feature's
node signatures: a redeploy restores a feature's state when they are all found again.

`python -m streaming.validate` prints the result as JSON (a process of its own: one JVM)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

import orjson

from common.errors import engine_message
from common.kafka import bootstrap
from common.settings import Settings, load_settings
from streaming.compiled_plan import own_signatures
from streaming.flink_env import create_table_env
from streaming.job import CatalogSource, base_sql, compiled_queries, enriched, feature_sql, time_bounds
from streaming.submit import kafka_source

PIPELINE = "lambda-features-check"


@dataclass
class FlinkCheck:
    problems: dict[str, str] = field(default_factory=dict)  # feature (or "job") -> Flink's message
    operators: dict[str, list[str]] = field(default_factory=dict)  # feature -> signatures of its own plan nodes


def check(settings: Settings) -> FlinkCheck:
    """Plan every statement of the job as it is deployed (its Kafka source and sinks; nothing is
    read or written); report what Flink rejects and each feature's own node signatures."""
    result = FlinkCheck()
    t_env = create_table_env(settings, with_kafka=True, pipeline_name=PIPELINE)
    stmts = t_env.create_statement_set()
    catalog = (
        CatalogSource(settings.catalog.topic, bootstrap(settings), int(settings.catalog.idle_timeout_s * 1000))
        if enriched(settings, None)
        else None
    )
    try:
        for sql in base_sql(kafka_source(settings), settings, time_bounds(settings), catalog=catalog):
            if sql.startswith("INSERT INTO "):
                stmts.add_insert_sql(sql)
            else:
                t_env.execute_sql(sql)
    except Exception as e:  # the event attributes and the acceptance rules
        result.problems["job"] = engine_message(e)
        return result
    sinks = {}
    for view_ddl, q in compiled_queries(settings):
        try:
            for sql in feature_sql(view_ddl, q, "kafka", settings):
                if sql.startswith("INSERT INTO "):
                    t_env.explain_sql(sql)
                    stmts.add_insert_sql(sql)
                else:
                    t_env.execute_sql(sql)
            sinks[q.feature.name] = f"sink_{q.output}"
        except Exception as e:
            result.problems[q.feature.name] = engine_message(e)
    if not result.problems:
        result.operators = own_signatures(json.loads(stmts.compile_plan().as_json_string()), sinks)
    return result


def main() -> None:
    result = check(load_settings())
    sys.stdout.buffer.write(orjson.dumps({"problems": result.problems, "operators": result.operators}) + b"\n")


if __name__ == "__main__":
    main()
