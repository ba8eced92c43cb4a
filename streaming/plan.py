"""The stream job as a compiled plan (Flink's JSON plan). A job executed from its plan gives each
operator the uid `<plan node id>_<transformation>`, so a checkpoint or a savepoint restores into
the same operators whatever the parallelism and the chaining. Without a plan Flink hashes the
topology, chaining included: a rescale from 1 to 2 subtasks un-chained the archive's writer from
its committer, and the restored job dropped the writer's state and the files it had in progress."""

from __future__ import annotations

import json
from pathlib import Path


def numbered(plan_json: str) -> str:
    """The plan with its nodes numbered 1..n in their order. The planner numbers them with a
    counter of the JVM, so a second compilation in one process would number on from the first,
    and the same job would get other uids."""
    plan = json.loads(plan_json)
    ids = {node["id"]: i for i, node in enumerate(plan["nodes"], 1)}
    for node in plan["nodes"]:
        node["id"] = ids[node["id"]]
    for edge in plan["edges"]:
        edge["source"], edge["target"] = ids[edge["source"]], ids[edge["target"]]
    return json.dumps(plan)


def compile_job(t_env, stmts, save_to: Path | None = None):  # -> CompiledPlan
    """The statement set's plan, numbered; written to `save_to` (for operators to read) when given."""
    from pyflink.table import PlanReference

    plan_json = numbered(stmts.compile_plan().as_json_string())
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        save_to.write_text(plan_json)
    return t_env.load_plan(PlanReference.from_json_string(plan_json))
