"""Flink's check of a feature repository, without running anything: every statement of the
stream job is planned (EXPLAIN) over a file source and blackhole sinks, so a filter or expression
Flink SQL rejects is reported with the planner's message, per feature. The same job graph gives
each feature's operator IDs: what a savepoint's state is mapped back to on a redeploy.

`python -m streaming.validate` prints the result as JSON (a process of its own: one JVM)."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

import orjson

from common.errors import engine_message
from common.settings import Settings, load_settings
from streaming.flink_env import flink_config
from streaming.job import FileSource, base_sql, compiled_queries, feature_sql, time_bounds

PIPELINE = "lambda-features-check"


@dataclass
class FlinkCheck:
    problems: dict[str, str] = field(default_factory=dict)  # feature (or "job") -> Flink's message
    operators: dict[str, list[str]] = field(default_factory=dict)  # feature -> operator IDs of its own vertices


def _stream_env(settings: Settings):
    """A StreamTableEnvironment with the job's configuration, so its job graph is the job's."""
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    conf = Configuration()
    for k, v in flink_config(settings, False, PIPELINE).items():
        conf.set_string(k, v)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    t_env = StreamTableEnvironment.create(env, EnvironmentSettings.new_instance().in_streaming_mode().build())
    for k, v in flink_config(settings, False, PIPELINE).items():
        t_env.get_config().set(k, v)
    return env, t_env


def _operators(env, outputs: dict[str, str]) -> dict[str, list[str]]:
    """Per feature, the operator IDs of the job-graph vertices only its sink reads from
    (walking up from `sink_<output>` until a vertex other features share)."""
    job_graph = env._j_stream_execution_environment.getStreamGraph(False).getJobGraph()
    vertices = list(job_graph.getVerticesAsArray())
    by_id = {str(v.getID()): v for v in vertices}
    parents = {str(v.getID()): [str(e.getSource().getProducer().getID()) for e in v.getInputs()] for v in vertices}
    children: dict[str, set[str]] = {vid: set() for vid in by_id}
    for vid, ps in parents.items():
        for p in ps:
            children[p].add(vid)

    def ancestors(vid: str) -> set[str]:
        seen, todo = set(), [vid]
        while todo:
            v = todo.pop()
            if v not in seen:
                seen.add(v)
                todo += parents[v]
        return seen

    names = {vid: str(v.getName()) for vid, v in by_id.items()}
    sinks = {
        feature: [vid for vid, name in names.items() if re.search(rf"\bsink_{re.escape(out)}\b", name)]
        for out, feature in outputs.items()
    }
    reach = {feature: set().union(*(ancestors(v) for v in vids)) for feature, vids in sinks.items() if vids}
    out: dict[str, list[str]] = {}
    for feature, own in reach.items():
        others = set().union(*(r for f, r in reach.items() if f != feature))
        ids = []
        for vid in sorted(own - others):
            ids += [str(pair.getGeneratedOperatorID()) for pair in by_id[vid].getOperatorIDs()]
        out[feature] = sorted(ids)
    return out


def check(settings: Settings) -> FlinkCheck:
    """Plan every statement of the job; report what Flink rejects and each feature's operator IDs."""
    result = FlinkCheck()
    env, t_env = _stream_env(settings)
    stmts = t_env.create_statement_set()
    source = FileSource(settings.home / "tmp" / "check-events.csv")  # never read: nothing runs
    try:
        for sql in base_sql(source, settings, time_bounds(settings)):
            if sql.startswith("INSERT INTO "):
                stmts.add_insert_sql(sql)
            else:
                t_env.execute_sql(sql)
    except Exception as e:  # the event attributes and the acceptance rules
        result.problems["job"] = engine_message(e)
        return result
    outputs = {}
    for view_ddl, q in compiled_queries(settings):
        try:
            for sql in feature_sql(view_ddl, q, "blackhole", settings):
                if sql.startswith("INSERT INTO "):
                    t_env.explain_sql(sql)
                    stmts.add_insert_sql(sql)
                else:
                    t_env.execute_sql(sql)
            outputs[q.output] = q.feature.name
        except Exception as e:
            result.problems[q.feature.name] = engine_message(e)
    if not result.problems:
        stmts.attach_as_datastream()
        result.operators = _operators(env, outputs)
    return result


def main() -> None:
    result = check(load_settings())
    sys.stdout.buffer.write(orjson.dumps({"problems": result.problems, "operators": result.operators}) + b"\n")


if __name__ == "__main__":
    main()
