"""The stream job runs from a compiled plan whose node ids, and so its operators' uids, do not
depend on what the JVM compiled before (a redeploy in a long-lived process) nor, for an unchanged
feature, on the features added or removed around it."""

from __future__ import annotations

import json

from streaming.compiled_plan import align, own_signatures


def _plan(features: list[tuple[str, str]], first_id: int = 1) -> str:
    """A plan as the planner writes it: one source, then per feature (name, filter) a calc, an
    aggregation and a sink, numbered on from first_id."""
    nodes = [{"id": first_id, "type": "scan", "table": "events"}]
    edges = []
    for name, filt in features:
        base = nodes[-1]["id"] + 1
        nodes += [
            {"id": base, "type": "calc", "condition": filt},
            {"id": base + 1, "type": "agg", "state": [{"name": "groupAggregateState"}]},
            {"id": base + 2, "type": "sink", "dynamicTableSink": {"table": {"identifier": f"`db`.`sink_{name}`"}}},
        ]
        edges += [
            {"source": first_id, "target": base, "shuffle": "FORWARD"},
            {"source": base, "target": base + 1, "shuffle": "HASH"},
            {"source": base + 1, "target": base + 2, "shuffle": "FORWARD"},
        ]
    return json.dumps({"flinkVersion": "2.3", "nodes": nodes, "edges": edges})


def _ids(plan_json: str) -> dict[str, list[int]]:
    """Per feature, the ids of its calc, aggregation and sink."""
    plan = json.loads(plan_json)
    sinks = {n["id"]: n["dynamicTableSink"]["table"]["identifier"] for n in plan["nodes"] if n["type"] == "sink"}
    up = {e["target"]: e["source"] for e in plan["edges"]}
    out = {}
    for sid, table in sinks.items():
        agg = up[sid]
        out[table.split("sink_")[1].strip("`")] = [up[agg], agg, sid]
    return out


def test_without_a_previous_plan_nodes_are_numbered_from_1_and_edges_follow():
    plan = json.loads(align(_plan([("a", "x > 1")], first_id=41)))
    assert [n["id"] for n in plan["nodes"]] == [1, 2, 3, 4]
    assert [(e["source"], e["target"]) for e in plan["edges"]] == [(1, 2), (2, 3), (3, 4)]


def test_added_removed_and_changed_features_against_the_deployed_plan():
    deployed = align(_plan([("a", "x > 1"), ("b", "x > 2"), ("c", "x > 3")]))
    assert _ids(deployed) == {"a": [2, 3, 4], "b": [5, 6, 7], "c": [8, 9, 10]}
    # d added before b, a removed, c's filter changed; compiled in another JVM (other numbers)
    new = align(_plan([("d", "x > 9"), ("b", "x > 2"), ("c", "x > 30")], first_id=500), deployed)
    ids = _ids(new)
    assert ids["b"] == [5, 6, 7]  # unchanged: its state is restored
    assert ids["d"] == [11, 12, 13] and ids["c"] == [14, 15, 16]  # new ids: they start empty
    assert json.loads(new)["nodes"][0]["id"] == 1  # the source keeps its offsets
    # what the plan command compares: the signatures only each feature's sink reads from
    before = own_signatures(json.loads(deployed), {f: f"sink_{f}" for f in "abc"})
    after = own_signatures(json.loads(new), {f: f"sink_{f}" for f in "dbc"})
    assert len(after["b"]) == 3 and after["b"] == before["b"]
    assert not set(after["c"]) & set(before["c"]) and set(after) == {"b", "c", "d"}
