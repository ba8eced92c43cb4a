"""Drill 7, poison records: malformed JSON, bytes that are not UTF-8, an empty record, fields
of the wrong type and a missing user_id, produced onto the Kafka events topic among good
events. Every one reaches the dead letters with its reason, partition and offset, the
completeness check accounts for them, and every other sink equals that of a run over the
same events without them (real Kafka, Flink, Redis, chDB; bounded runs on the same job SQL
as `stream run`)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson

from common.clickhouse import close_clients, get_client
from common.kafka import bootstrap, ensure_topics, producer
from common.redis_store import get_redis
from common.services import local_services
from common.settings import Settings
from dq_checks.completeness import events as completeness_events
from features.adapters import to_json
from features.ecommerce import STREAM_FEATURES
from features.generator import GeneratorConfig, generate
from monitoring.outputs import StreamOutputs
from streaming.job import KafkaSource
from streaming.runner import run_job
from tests.conftest import isolated, shared_env
from warehouse.tables import stream_table

EVENTS = 20_000
TABLES = tuple(stream_table(f) for f in STREAM_FEATURES)


def poison(t: int) -> list[tuple[bytes | None, str]]:
    """(the record's value, the reason it must be dead-lettered with); t: an event time inside the data."""

    def js(**fields) -> bytes:
        return orjson.dumps(fields)

    return [
        (b"this is not json", "malformed JSON"),
        (b'{"user_id": 5, "event_type": "click", "event_ti', "malformed JSON"),
        (b"[1, 2, 3]", "malformed JSON"),
        (b"", "malformed JSON"),
        (None, "empty record"),
        (b'{"user_id": 1, "brand": "\xff\xfe", "event_type": "click", "event_time": 1}', "not UTF-8"),
        (js(event_id="p1", user_id="abc", event_type="click", event_time=t), "user_id not an integer"),
        (js(event_id="p2", user_id={"id": 1}, event_type="click", event_time=t), "user_id not an integer"),
        (js(event_id="p3", user_id=7, event_type="click", event_time="yesterday"), "event_time not an integer"),
        (js(event_id="p4", user_id=7, event_type="cart", item_id=1, price="free", event_time=t), "price not a number"),
        (js(event_id="p5", user_id=7, event_type="click", item_id=[1], event_time=t), "item_id not an integer"),
        (js(event_id="p6", event_type="click", event_time=t), "missing user_id"),
        (js(event_id="p7", user_id=None, event_type="login", event_time=t), "missing user_id"),
    ]


def produce(settings: Settings, evs: list[dict], bad: list[tuple[bytes | None, str]]) -> tuple[dict, dict]:
    """Good events keyed by user; the bad records spread over both partitions, in the middle
    of the data. Returns the end offset of each partition and each bad record's position."""
    ensure_topics(settings, [settings.kafka.events_topic], settings.kafka.partitions)
    p = producer(settings)
    positions: dict[tuple[int, int], str] = {}
    # each partition's end, from the delivery reports
    ends: dict[int, int] = {}
    every = len(evs) // (len(bad) + 1)

    def delivered(err, msg) -> None:
        assert err is None, err
        ends[msg.partition()] = max(ends.get(msg.partition(), 0), msg.offset() + 1)

    def placed(reason: str):
        def report(err, msg):
            delivered(err, msg)
            positions[(msg.partition(), msg.offset())] = reason

        return report

    for i, e in enumerate(evs):
        p.produce(settings.kafka.events_topic, to_json(e), key=str(e["user_id"]).encode(), on_delivery=delivered)
        k = i // every
        if i % every == every - 1 and k < len(bad):
            value, reason = bad[k]
            part = k % settings.kafka.partitions
            p.produce(settings.kafka.events_topic, value, partition=part, on_delivery=placed(reason))
        p.poll(0)
    assert p.flush(60) == 0
    return ends, positions


def run(settings: Settings, bad: list[tuple[bytes | None, str]]) -> tuple[dict, dict]:
    """A bounded run over the topic; every sink's content, and the bad records' positions."""
    evs = list(generate(GeneratorConfig(seed=7, late=0.0, events_per_second=100), EVENTS))
    services = local_services(settings, monitoring=False)
    for svc in services:
        svc.start()
    try:
        stop, positions = produce(settings, evs, bad)
        s = settings.kafka
        counted = StreamOutputs(settings.archive_dir, settings.dead_letter_dir)
        counted.poll()  # the exporter's count, from the files the run commits
        run_job(settings, KafkaSource(s.events_topic, bootstrap(settings), s.group_id, "earliest", stop_offsets=stop))
        r = get_redis(settings)
        online = {k: r.hgetall(k) for k in r.scan_iter("user:*", count=1000)}
        counted.poll()
    finally:
        for svc in services:
            svc.stop()
    ch = get_client(settings)
    tables = {t: sorted(ch.query(f"SELECT * FROM features.{t} FINAL").result_rows, key=repr) for t in TABLES}
    archived: Counter = Counter()
    for part in settings.archive_dir.rglob("part-*"):
        for line in part.read_bytes().splitlines():
            archived[orjson.loads(line)["event_id"]] += 1
    dead = [
        orjson.loads(line)
        for part in (settings.dead_letter_dir / "stream").rglob("part-*")
        for line in part.read_bytes().splitlines()
    ]
    day = datetime.fromtimestamp(evs[len(evs) // 2]["event_time"] / 1000, UTC).date()
    out = {"online": online, "tables": tables, "archive": archived, "dead": dead, "day": day}
    return out | {"counted": counted.dead_letters}, positions


def test_poison_records_reach_the_dead_letters_and_change_nothing_else(tmp_path: Path, shared_kafka):
    poisoned, _ = isolated(tmp_path / "poisoned", **shared_env(shared_kafka))
    clean, _ = isolated(tmp_path / "clean", **shared_env(shared_kafka))
    t = next(iter(generate(GeneratorConfig(seed=7, late=0.0, events_per_second=100), 1)))["event_time"] + 60_000
    bad = poison(t)
    try:
        a, positions = run(poisoned, bad)
        b, _ = run(clean, [])

        # each bad record dead-lettered once, with its reason, partition and offset
        got = Counter((d["reason"], d["src_part"], d["src_off"]) for d in a["dead"])
        assert got == Counter((reason, part, off) for (part, off), reason in positions.items())
        assert len(positions) == len(bad)
        unreadable = {d["src_off"]: d["raw"] for d in a["dead"] if d["reason"] == "malformed JSON"}
        assert "this is not json" in unreadable.values()  # what was sent, to look at
        assert b["dead"] == []

        # the exporter counts them by reason (lf_stream_dead_letters_total)
        assert a["counted"] == {("stream", r): n for r, n in Counter(r for _, r in bad).items()}

        # the completeness check accounts for every position of the day
        day = a["day"]
        check = completeness_events(poisoned, day)
        assert check.passed and check.metrics["missing"] == 0 and check.metrics["duplicated"] == 0, check
        assert check.metrics["dead_letters"] == len(bad)

        # and nothing else changed
        assert sum(a["archive"].values()) == EVENTS
        assert a["archive"] == b["archive"]
        for table in TABLES:
            assert a["tables"][table] == b["tables"][table], table
        assert a["online"] == b["online"]
    finally:
        close_clients()
