"""The stream job's compiled plan in a real JVM: the same node ids when compiled twice in one
process (a redeploy in a long-lived process); tests/unit/test_compiled_plan.py has the alignment."""

from __future__ import annotations

import json

from streaming.compiled_plan import align


def test_the_job_compiled_twice_in_one_jvm_gets_the_same_plan(settings, monkeypatch):
    import streaming.job as job
    from streaming.flink_env import create_table_env

    monkeypatch.setattr(job, "ensure_topics", lambda *a, **k: None)  # compiled only: no broker needed
    monkeypatch.setattr(job, "end_offsets", lambda *a, **k: {0: 0})
    source = job.KafkaSource(topic="lf.events", bootstrap="127.0.0.1:1", group_id="g")
    plans = []
    for _ in range(2):  # a table environment each, in the one JVM of this process
        t_env = create_table_env(settings, with_kafka=True, pipeline_name="plan-test")
        stmts = job.build_statements(t_env, source, settings, "kafka")
        plans.append(json.loads(align(stmts.compile_plan().as_json_string())))
    # the uids are `<node id>_<transformation>`: the same plan gives the same uids
    assert plans[0]["nodes"][0]["id"] == 1 and len(plans[0]["nodes"]) > 50
    assert plans[0] == plans[1]
    # the events topic is read once, its records typed and checked by the event format (which
    # reads the clock as each record is read, not as the job started: jvm/, EventReaderTest)
    tables = [n["scanTableSource"]["table"]["identifier"] for n in plans[0]["nodes"] if "scanTableSource" in n]
    assert [t for t in tables if "kafka_" in t] == ["`default_catalog`.`default_database`.`kafka_events`"]
    assert "`user_id` BIGINT" in json.dumps(plans[0]["nodes"][0]) and "`reason` VARCHAR" in json.dumps(
        plans[0]["nodes"][0]
    )
