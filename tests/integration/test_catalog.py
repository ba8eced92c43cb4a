"""The item catalogue on a real MariaDB: loading (invalid rows named, earlier rows kept) and
the CDC relay to a real Kafka broker, killed with SIGKILL and restarted (nothing missed,
nothing repeated)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import orjson
import pytest

from catalog.load import load_file
from catalog.relay import saved_position
from common.catalog_db import connect, target
from common.errors import PlatformError
from common.kafka import end_offsets, ensure_topics, read_all
from common.services import kafka_service, relay_service
from tests.conftest import free_port


@pytest.fixture
def cat(settings):
    s = settings.model_copy(update={"catalog": settings.catalog.model_copy(update={"relay_port": free_port()})})
    yield s
    relay_service(s).stop()


def items(s) -> dict[int, tuple]:
    conn = connect(s)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT item_id, category_id, brand, price, title FROM items")
            return {r[0]: r[1:] for r in cur.fetchall()}
    finally:
        conn.close()


def test_load_stops_at_an_invalid_row_and_keeps_the_rows_before(cat, tmp_path):
    csv = tmp_path / "items.csv"
    csv.write_text(
        "item_id,category_id,brand,price,title\n1,10,acme,9.99,Anvil\n2,,zeta,5,\n3,12,acme,abc,Bad\n4,1,x,1,\n"
    )
    with pytest.raises(PlatformError) as err:
        load_file(cat, csv)
    assert f"{csv}, line 4: bad price 'abc'" in err.value.what
    assert set(items(cat)) == {1, 2}
    assert items(cat)[2] == (None, "zeta", 5, None)

    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text('{"item_id": 5, "price": 1.5}\n{"brand": "nokey", "price": 2}\n')
    with pytest.raises(PlatformError) as err:
        load_file(cat, jsonl)
    assert f"{jsonl}, line 2: missing item_id" in err.value.what
    jsonl.write_text('{"item_id": 6, "price": -1}\n')
    with pytest.raises(PlatformError, match="line 1: bad price -1"):
        load_file(cat, jsonl)
    assert set(items(cat)) == {1, 2, 5}

    csv.write_text("item_id,category_id,brand,price,title\n1,10,acme,12.50,Anvil\n3,12,acme,3,Fixed\n")
    assert load_file(cat, csv).rows == 2  # a reload upserts
    assert items(cat)[1][2] == pytest.approx(12.5) and 3 in items(cat)


def binlog_changes(s) -> list[tuple[str, int, int, str]]:
    """Every change of the table as the binlog holds it: (file, pos, row, op), read independently."""
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

    t = target(s)
    stream = BinLogStreamReader(
        connection_settings=t.connection_settings(),
        server_id=4242,
        blocking=False,
        resume_stream=True,
        log_file="binlog.000001",
        log_pos=4,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
        only_schemas=[t.database],
        only_tables=["items"],
    )
    ops = {WriteRowsEvent: "c", UpdateRowsEvent: "u", DeleteRowsEvent: "d"}
    out = [(stream.log_file, stream.log_pos, i, ops[type(ev)]) for ev in stream for i in range(len(ev.rows))]
    stream.close()
    return out


def topic_changes(s) -> list[tuple[str, int, int, str]]:
    out = []
    for _, value in read_all(s, s.catalog.topic):
        m = orjson.loads(value)
        out.append((m["source"]["file"], m["source"]["pos"], m["source"]["row"], m["op"]))
    return out


def wait_for(cond, timeout_s: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Writer(threading.Thread):
    """Catalogue changes, one transaction at a time: inserts, price updates, deletes."""

    def __init__(self, s, first_id: int) -> None:
        super().__init__(daemon=True)
        self.s, self.next_id, self.stop = s, first_id, threading.Event()
        self.transactions = 0

    def run(self) -> None:
        while not self.stop.is_set():
            self.once()
            time.sleep(0.05)

    def once(self) -> None:
        conn = connect(self.s)
        i = self.next_id
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO items (item_id, brand, price) VALUES (%s, %s, %s)",
                [(i, "b", 1), (i + 1, "b", 2), (i + 2, "c", 3)],
            )
            cur.execute("UPDATE items SET price = price + 1 WHERE item_id = %s", (i + i % 3,))
            cur.execute("DELETE FROM items WHERE item_id = %s", (i + 2,))
        conn.commit()
        conn.close()
        self.next_id += 3
        self.transactions += 1


def kill(relay) -> None:
    """SIGKILL, then reap it (it is this process's child), so its port is free again."""
    pid = relay.pid()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    relay.stop()  # removes the pidfile


def test_relay_killed_between_the_brokers_ack_and_its_save_repeats_nothing(cat):
    ensure_topics(cat, [cat.catalog.topic], 1)
    Writer(cat, 1).once()  # one transaction before the relay starts

    # held after the broker's acknowledgment, before the position is saved: killed there
    relay = relay_service(cat, hold_ack_s=3)
    relay.start()
    wait_for(lambda: len(topic_changes(cat)) == 5, what="the first transaction on the topic")
    Writer(cat, 100).once()
    wait_for(lambda: len(topic_changes(cat)) == 10, what="the second transaction on the topic")
    kill(relay)  # the second transaction is acknowledged, its position not saved

    # killed at random moments while relaying changes that keep coming
    writer = Writer(cat, 1000)
    writer.start()
    relay = relay_service(cat)
    rnd = random.Random(7)
    for _ in range(3):
        saved = saved_position(cat)
        relay.start()
        wait_for(lambda was=saved: saved_position(cat) != was, what="the relay to relay more")
        time.sleep(rnd.uniform(0, 0.3))
        kill(relay)
    writer.stop.set()
    writer.join()
    relay.start()
    expected = binlog_changes(cat)
    wait_for(lambda: end_offsets(cat, cat.catalog.topic)[0] >= len(expected), what="the relay to catch up")
    time.sleep(1)
    assert writer.transactions > 3
    assert topic_changes(cat) == expected  # in binlog order, each change once
    relay.stop()


@pytest.mark.own_broker  # it kills the broker
def test_broker_killed_mid_stream_the_relay_goes_on_from_its_position(cat):
    """The broker SIGKILLed while the relay relays changes that keep coming, then started again
    on the same data: the relay (the same process) goes on by itself, each change once, in
    binlog order, none re-relayed from an older position."""
    broker = kafka_service(cat)
    broker.start()
    writer = Writer(cat, 1)
    writer.start()
    relay = relay_service(cat)
    relay.start()
    relay_pid = relay.pid()
    wait_for(lambda: saved_position(cat) is not None, what="the relay to save a position")
    os.kill(broker.pid(), signal.SIGKILL)
    time.sleep(3)  # changes keep coming while the broker is down
    broker.start()
    saved = saved_position(cat)
    wait_for(lambda: saved_position(cat) != saved, 600, "the relay to relay again")
    writer.stop.set()
    writer.join()
    expected = binlog_changes(cat)
    wait_for(lambda: end_offsets(cat, cat.catalog.topic)[0] >= len(expected), 300, "the relay to catch up")
    time.sleep(1)
    assert relay.pid() == relay_pid, "the relay was restarted instead of going on"
    assert topic_changes(cat) == expected  # in binlog order, each change once
    relay.stop()


def test_supervisor_observes_the_catalogue_and_restarts_a_dead_relay(platform_env, monkeypatch):
    from dagster import build_sensor_context

    from common.settings import load_settings
    from orchestration.definitions import build_definitions
    from orchestration.instance import dagster_instance

    monkeypatch.setenv("LAMBDA_FEATURES_CATALOG__RELAY_PORT", str(free_port()))
    s = load_settings()  # what the Dagster resources read: platform_env and the relay's port
    defs = build_definitions(s)
    sensor = defs.resolve_sensor_def("catalog_supervisor")
    with build_sensor_context(definitions=defs, resources=defs.resources) as ctx:
        assert "not deployed" in (sensor.evaluate_tick(ctx).skip_message or "")

    Writer(s, 1).once()
    deploy = defs.resolve_job_def("catalog_relay_deploy")
    run = deploy.execute_in_process(instance=dagster_instance(s))
    assert run.success
    [mat] = run.asset_materializations_for_node("catalog_relay")
    assert mat.metadata["action"].value == "started"
    relay = relay_service(s)
    wait_for(lambda: saved_position(s) is not None, what="the relay's first save")
    with build_sensor_context(definitions=defs, resources=defs.resources) as ctx:
        result = sensor.evaluate_tick(ctx)
    assert not result.run_requests
    [obs] = result.asset_events
    assert obs.metadata["rows"].value == 2 and obs.metadata["CDC lag (s)"].value == 0

    pid = relay.pid()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with build_sensor_context(definitions=defs, resources=defs.resources) as ctx:
        result = sensor.evaluate_tick(ctx)
    assert len(result.run_requests) == 1
    assert deploy.execute_in_process(instance=dagster_instance(s)).success
    assert relay.pid() is not None and relay.pid() != pid
    relay.stop()
