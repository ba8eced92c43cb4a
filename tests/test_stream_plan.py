"""The stream job runs from a compiled plan whose node ids, and so its operators' uids, do not
depend on what the JVM compiled before (a redeploy in a long-lived process)."""

from __future__ import annotations

import json

import pytest

from streaming.plan import numbered


def test_nodes_are_numbered_in_order_and_edges_follow():
    plan = {
        "flinkVersion": "2.1",
        "nodes": [{"id": 41, "type": "scan"}, {"id": 43, "type": "calc"}, {"id": 42, "type": "sink"}],
        "edges": [{"source": 41, "target": 43}, {"source": 43, "target": 42}],
    }
    out = json.loads(numbered(json.dumps(plan)))
    assert [n["id"] for n in out["nodes"]] == [1, 2, 3]
    assert [(e["source"], e["target"]) for e in out["edges"]] == [(1, 2), (2, 3)]
    assert [n["type"] for n in out["nodes"]] == ["scan", "calc", "sink"]


@pytest.mark.slow
def test_the_job_compiled_twice_in_one_jvm_gets_the_same_plan(settings, monkeypatch):
    import streaming.job as job
    from streaming.flink_env import create_table_env
    from streaming.plan import compile_job

    monkeypatch.setattr(job, "ensure_topics", lambda *a, **k: None)  # compiled only: no broker needed
    monkeypatch.setattr(job, "end_offsets", lambda *a, **k: {0: 0})
    source = job.KafkaSource(topic="lf.events", bootstrap="127.0.0.1:1", group_id="g")
    plans = []
    for i in range(2):  # a table environment each, in the one JVM of this process
        t_env = create_table_env(settings, with_kafka=True, pipeline_name="plan-test")
        compile_job(t_env, job.build_statements(t_env, source, settings, "kafka"), settings.run_dir / f"{i}.json")
        plans.append(json.loads((settings.run_dir / f"{i}.json").read_text()))
    # the uids are `<node id>_<transformation>`: the same plan gives the same uids
    assert plans[0]["nodes"][0]["id"] == 1 and len(plans[0]["nodes"]) > 50
    assert plans[0] == plans[1]
    # the newest event time accepted follows the clock as records are read, not as the job started
    assert '"$UNIX_TIMESTAMP$1"' in json.dumps(plans[0])
