"""The stream job as a compiled plan (Flink's JSON plan). A job executed from its plan gives each
operator the uid `<plan node id>_<transformation>`, and a savepoint's state goes back to the
operators of the same uids. So the node ids are ours to keep stable:

- without a plan, Flink hashes the topology, chaining included: a rescale from 1 to 2 subtasks
  un-chained the archive's writer from its committer, and the restored job dropped the writer's
  state with the files it had in progress;
- the planner numbers nodes with a counter of the JVM, and a feature added or removed shifts the
  numbers of every node after it.

Each node has a signature: its own JSON without its id, and the signatures of its inputs. A node
whose signature the previous plan has gets that plan's id back, so an unchanged feature keeps its
state whatever else was added or removed; a changed one (its filter, its aggregation, anything
upstream of it) gets new ids and starts empty."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path


def _inputs(plan: dict) -> dict[int, list[tuple[int, str]]]:
    """Per node, (input node, the edge's shuffle) in the plan's order (a join's left comes first)."""
    out: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for e in plan["edges"]:
        how = json.dumps({k: v for k, v in e.items() if k not in ("source", "target")}, sort_keys=True)
        out[e["target"]].append((e["source"], how))
    return out


def signatures(plan: dict) -> dict[int, str]:
    """Every node's signature (see the module's doc), by node id."""
    nodes = {n["id"]: n for n in plan["nodes"]}
    inputs = _inputs(plan)
    sigs: dict[int, str] = {}

    def sig(nid: int) -> str:
        if nid not in sigs:
            own = json.dumps({k: v for k, v in nodes[nid].items() if k != "id"}, sort_keys=True)
            ups = "".join(sig(src) + how for src, how in inputs[nid])
            sigs[nid] = hashlib.sha256((own + ups).encode()).hexdigest()[:20]
        return sigs[nid]

    for nid in nodes:
        sig(nid)
    return sigs


def align(plan_json: str, previous_json: str | None = None) -> str:
    """The plan with the previous plan's id on each node of the same signature, and new ids (after
    the previous plan's highest) on the others, in order; with no previous plan, 1..n."""
    plan = json.loads(plan_json)
    free: dict[str, list[int]] = defaultdict(list)
    next_id = 1
    if previous_json:
        previous = json.loads(previous_json)
        for nid, s in signatures(previous).items():
            free[s].append(nid)
        next_id = max((n["id"] for n in previous["nodes"]), default=0) + 1
    sigs = signatures(plan)
    ids: dict[int, int] = {}
    for node in plan["nodes"]:
        if free[sigs[node["id"]]]:
            ids[node["id"]] = free[sigs[node["id"]]].pop(0)
        else:
            ids[node["id"]], next_id = next_id, next_id + 1
    for node in plan["nodes"]:
        node["id"] = ids[node["id"]]
    for edge in plan["edges"]:
        edge["source"], edge["target"] = ids[edge["source"]], ids[edge["target"]]
    return json.dumps(plan)


def own_signatures(plan: dict, sink_tables: dict[str, str]) -> dict[str, list[str]]:
    """Per feature (sink_tables: feature -> its sink table's name), the signatures of the nodes
    only its sink reads from: what must be found again for its state to be restored."""
    inputs = _inputs(plan)
    by_table = {
        n["dynamicTableSink"]["table"]["identifier"].rsplit(".", 1)[-1].strip("`"): n["id"]
        for n in plan["nodes"]
        if "dynamicTableSink" in n
    }

    def ancestors(nid: int) -> set[int]:
        seen, todo = set(), [nid]
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo += [src for src, _ in inputs[n]]
        return seen

    reach = {f: ancestors(by_table[t]) for f, t in sink_tables.items() if t in by_table}
    sigs = signatures(plan)
    out = {}
    for f, nodes in reach.items():
        others = set().union(*(r for g, r in reach.items() if g != f))
        out[f] = sorted(sigs[n] for n in nodes - others)
    return out


def execute_job(t_env, stmts, save_to: Path | None = None):  # -> TableResult
    """Run the statement set from its plan, the plan's ids aligned with the plan saved at
    `save_to` by the last deployment (when there is one), and saved there in its place."""
    from pyflink.table import PlanReference, TableResult

    previous = save_to.read_text() if save_to is not None and save_to.exists() else None
    plan_json = align(stmts.compile_plan().as_json_string(), previous)
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        save_to.write_text(plan_json)
    j_plan = t_env._j_tenv.loadPlan(PlanReference.from_json_string(plan_json)._j_plan_reference)
    # PyFlink 2.x's CompiledPlan.execute() calls a Python method on the Java table environment
    # (load_plan hands it the Java object): do what it means to
    t_env._before_execute()
    return TableResult(j_plan.execute())
