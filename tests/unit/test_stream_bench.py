"""The stream benchmark's own logic: which task a JVM thread belongs to, the source lag read
from the archive, the table of latency versus rate, and a process's CPU by thread group."""

from __future__ import annotations

import json
import os

from bench.machine import jit_share, thread_cpu_s
from bench.stream_bench import print_rate_table, source_lag, task_of


def test_threads_are_grouped_by_flink_task_without_the_subtask():
    chain = "Source: KafkaSource-kafka_events -> Calc[2] -> (Calc[3], Calc[4])"
    assert task_of(f"{chain} (1/2)#0") == task_of(f"{chain} (2/2)#3") == chain
    assert task_of("Source Data Fetcher for Source: KafkaSource-kafka_events (1/2)#0") == "Kafka source fetchers"
    assert task_of("AsyncOperations-thread-1") == "checkpoint snapshots (async)"
    assert task_of("kafka-producer-network-thread | producer-9") == "Kafka sink producers"
    assert task_of("C2 CompilerThread0") == "other JVM threads"


def test_source_lag_reads_committed_and_in_progress_files(tmp_path):
    part = tmp_path / "dt=2026-11-27" / "hour=03"
    part.mkdir(parents=True)
    rows = [{"event_time": 1000 * i, "arrived_at": 1000 * i + 40 + i} for i in range(4)]
    (part / "part-0").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    # a file still being written: hidden, its last line cut short
    (part / ".part-1.inprogress").write_text(json.dumps(rows[2]) + "\n" + json.dumps(rows[3]) + "\n" + '{"event_ti')
    (part / "_SUCCESS").write_text("")
    assert source_lag(tmp_path, 0, every=1) == {40: 1, 41: 1, 42: 1, 43: 1}
    assert sum(source_lag(tmp_path, 0, every=2).values()) == 2  # lines 0 of each file
    assert source_lag(tmp_path, 2000, every=1) == {42: 1, 43: 1}  # the warm-up's events left out


def test_the_rate_table_has_a_row_per_live_run_in_rate_order(tmp_path, capsys):
    def run(rate: int, p99: int, flat: bool) -> dict:
        cpu = {"Flink JVM (mini-cluster)": 100.0, "Kafka broker": 30.0, "Redis": 2.0, "lf-load-olap": 3.0}
        return {"rate": rate, "achieved": rate, "to_redis_ms": [90, 150, p99, 400], "cpu_us": cpu, "lag_flat": flat}

    (tmp_path / "live-10000.json").write_text(json.dumps(run(10_000, 900, False)))
    (tmp_path / "live-1000.json").write_text(json.dumps(run(1_000, 200, True)))
    print_rate_table(tmp_path)
    rows = capsys.readouterr().out.splitlines()[3:5]
    assert rows[0].split() == [
        "1,000",
        "1,000",
        "90",
        "200",
        "400",
        "100.0",
        "30.0",
        "0.0",
        "0.0",
        "5.0",
        "135.0",
        "flat",
    ]
    assert rows[1].split()[0] == "10,000" and rows[1].split()[3] == "900" and rows[1].endswith("GREW")


def test_thread_cpu_groups_threads_by_name_and_counts_the_jit():
    threads = thread_cpu_s(os.getpid())
    assert threads and all(v >= 0 for v in threads.values())
    assert not any(k[-1:].isdigit() or k.endswith("-") for k in threads), threads  # one group per kind
    assert jit_share({"C2 CompilerThre": 2.0, "C1 CompilerThre": 0.5, "data-plane-kafk": 7.0}) == 2.5
    assert jit_share({"VM Thread": 1.0}) == 0.0
