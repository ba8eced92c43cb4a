"""Catalogue changes in the middle of the events (a price change, a brand rename, a new item, a
deleted item, two changes in one second) through the real platform: MariaDB's binlog, the
relay, Kafka, the stream job's event-time temporal join (replay) and the batch's join
(reconcile). Both give the features a reference computes from the archived change history,
unknown items are kept and counted, and the referential_completeness check reports them."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal

import orjson

from catalog.relay import Relay
from common.catalog_db import connect
from common.clickhouse import get_client
from common.kafka import end_offsets
from dq_checks.referential import referential_completeness
from tests.conftest import cli, env_of, free_port, run_batch
from tests.support.pipeline import ms

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
D = date(2026, 1, 1)
MIN = 60_000


def change(conn, at_ms: int, *statements: tuple[str, tuple]) -> None:
    """One transaction at a given time of the database (its binlog time, in seconds)."""
    with conn.cursor() as cur:
        cur.execute("SET timestamp = %s", (at_ms / 1000,))
        for sql, args in statements:
            cur.execute(sql, args)
    conn.commit()


def catalogue_history(conn) -> None:
    insert = "INSERT INTO items (item_id, category_id, brand, price, title) VALUES (%s, %s, %s, %s, %s)"
    price = "UPDATE items SET price = %s WHERE item_id = %s"
    change(
        conn,
        T0 - 60 * MIN,
        *[
            (insert, (1, 10, "acme", 9.99, "anvil")),
            (insert, (2, 10, "b", 5.00, "bolt")),
            (insert, (3, 11, "c", 2.50, "cog")),
            (insert, (4, 11, "acme", 1.00, "drill")),
            (insert, (5, 12, None, None, "no brand, no price")),
        ],
    )
    change(conn, T0 + 10 * MIN, (price, (19.99, 1)))  # a price change
    change(conn, T0 + 20 * MIN, ("UPDATE items SET brand = 'bee' WHERE item_id = 2", ()))  # a brand rename
    change(conn, T0 + 30 * MIN, (insert, (6, 12, "new", 7.00, "new item")))  # a new item
    change(conn, T0 + 40 * MIN, ("DELETE FROM items WHERE item_id = 3", ()))  # a deleted item
    change(conn, T0 + 45 * MIN, (price, (2.00, 4)))  # two changes in one second: the last wins
    change(conn, T0 + 45 * MIN, (price, (3.00, 4)))


def events() -> list[dict]:
    """Clicks and purchases of items 1..7 (7 never in the catalogue) every 30 s over an hour and
    a quarter, and one of each item exactly at each change's time."""
    out = []
    times = list(range(T0, T0 + 75 * MIN, 30_000)) + [T0 + k * MIN for k in (10, 20, 30, 40, 45)]
    for n, t in enumerate(sorted(times)):
        for item in range(1, 8):
            etype = "purchase" if (n + item) % 3 == 0 else "click"
            out.append({"user_id": item * 10 + n % 3, "event_type": etype, "event_time": t, "item_id": item})
    return out


def reference(history: list[dict], evs: list[dict]) -> tuple[dict, dict, int]:
    """brand_clicks_1h and category_purchases_1h computed in Python from the archived change
    history (deduplicated by binlog position), and the count of events of unknown items."""
    changes = {(c["binlog_file"], c["binlog_pos"], c["binlog_row"]): c for c in history}.values()
    by_item = defaultdict(list)
    for c in sorted(changes, key=lambda c: (c["changed_at"], c["binlog_file"], c["binlog_pos"], c["binlog_row"])):
        by_item[c["item_id"]].append(c)

    def version(item: int, t: int) -> dict | None:
        valid = [c for c in by_item.get(item, []) if c["changed_at"] <= t]
        return valid[-1] if valid and valid[-1]["op"] != "d" else None

    clicks: Counter = Counter()
    purchases: dict = defaultdict(lambda: [0, Decimal("0.00")])
    unknown = 0
    for e in evs:
        v = version(e["item_id"], e["event_time"])
        unknown += v is None
        w = e["event_time"] // 3_600_000 * 3_600_000
        if e["event_type"] == "click":
            clicks[(w, v and v["brand"])] += 1
        else:
            p = purchases[(w, v and v["category_id"])]
            p[0] += 1
            p[1] += Decimal(str((v and v["price"]) or 0)).quantize(Decimal("0.01"))
    return dict(clicks), {k: tuple(p) for k, p in purchases.items()}, unknown


def archived_history(settings) -> list[dict]:
    """The catalogue's change history as the stream job archived it."""
    parts = settings.catalog_history_dir.rglob("part-*")
    return [orjson.loads(line) for p in parts for line in p.read_bytes().splitlines()]


def features(settings, side: str) -> tuple[dict, dict]:
    ch = get_client(settings)
    clicks = ch.query(f"SELECT window_start, catalog_brand, clicks FROM features.brand_clicks_1h_{side} FINAL")
    purchases = ch.query(
        "SELECT window_start, catalog_category_id, purchases, purchase_value "
        f"FROM features.category_purchases_1h_{side} FINAL"
    )
    return (
        {(ms(w), b): n for w, b, n in clicks.result_rows},
        {(ms(w), c): (n, v) for w, c, n, v in purchases.result_rows},
    )


def relaying_history(settings):
    """Settings with a relay port of their own, the catalogue history in the database, and a relay
    relaying it in a thread: (settings, relay, thread)."""
    s = settings.model_copy(update={"catalog": settings.catalog.model_copy(update={"relay_port": free_port()})})
    conn = connect(s)
    catalogue_history(conn)
    conn.close()
    relay = Relay(s)
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    return s, relay, thread


def test_mid_stream_catalogue_changes_join_alike_in_stream_and_batch(settings, tmp_path):
    s, relay, thread = relaying_history(settings)
    deadline = time.monotonic() + 60
    while relay.saved is None or relay.relayed < 11:  # 5 inserts, 6 changes
        assert time.monotonic() < deadline and thread.is_alive(), "the relay did not relay the changes"
        time.sleep(0.1)
    relay.stop.set()
    thread.join()
    assert end_offsets(s, s.catalog.topic) == {0: 11}

    evs = events()
    src = tmp_path / "events.jsonl"
    src.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in evs))
    replay = cli(["replay", "--format", "jsonl", str(src)], env_of(s))
    out = replay.communicate(timeout=900)[0].decode()
    assert replay.returncode == 0, out[-3000:]

    # the change history, archived by the stream job with its source positions
    history = archived_history(s)
    assert len(history) == 11 and {c["op"] for c in history} == {"c", "u", "d"}
    assert all(c["binlog_file"].startswith("binlog.") and c["binlog_pos"] > 0 for c in history)
    clicks, purchases, unknown = reference(history, evs)
    assert (T0, "bee") in clicks and (T0, "b") in clicks and (T0, None) in clicks  # rename, unknown items
    assert purchases[(T0, 12)][0] > 0

    stream = features(s, "stream")
    assert stream == (clicks, purchases)

    batch = run_batch(s, "reconcile", "--date", str(D))
    assert batch.returncode == 0, batch.stdout + batch.stderr
    assert features(s, "batch") == (clicks, purchases)

    # unknown items: item 7 always, item 6 before it was created, item 3 from its deletion
    expected_unknown = sum(
        1
        for e in evs
        if e["item_id"] == 7
        or (e["item_id"] == 6 and e["event_time"] < T0 + 30 * MIN)
        or (e["item_id"] == 3 and e["event_time"] >= T0 + 40 * MIN)
    )
    assert unknown == expected_unknown
    check = referential_completeness(s, D)
    assert check.metrics["unknown_item_events"] == unknown
    assert check.metrics["events_with_item"] == len(evs)
    assert not check.passed and check.severity == "ERROR"  # above 10 %
    assert "item_id=7" in check.sample


def test_events_keep_flowing_while_the_catalogue_is_silent(settings, tmp_path):
    """A long-running job on Kafka: the catalogue's last change is at T0 + 45 min and its topic
    stays silent, yet the hourly windows after it fire (its source goes idle), with the values
    of the versions valid at each event's time."""
    import signal

    from common.kafka import ensure_topics, producer
    from tests.conftest import cli

    s, relay, thread = relaying_history(settings)
    while relay.relayed < 11:
        assert thread.is_alive()
        time.sleep(0.1)
    relay.stop.set()
    thread.join()

    env = env_of(s) | {
        "LAMBDA_FEATURES_STREAM__REST_PORT": str(free_port()),
        "LAMBDA_FEATURES_STREAM__ARCHIVE_ROLLOVER_S": "2",
        "LAMBDA_FEATURES_STREAM__CHECKPOINT_INTERVAL_MS": "1000",
        "LAMBDA_FEATURES_CATALOG__IDLE_TIMEOUT_S": "2",
    }
    job = cli(["stream", "run", "--start", "earliest"], env)
    try:
        deadline = time.monotonic() + 300
        while not any(s.catalog_history_dir.rglob("part-*")):  # the job has read the catalogue
            assert job.poll() is None, job.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the job did not archive the catalogue"
            time.sleep(0.5)
        time.sleep(3)  # and the catalogue has been silent for longer than its idle timeout

        evs = [e for e in events() if e["event_time"] < T0 + 60 * MIN]
        evs += [{**e, "event_time": e["event_time"] + 60 * MIN} for e in evs]  # a second hour, all after the change
        ensure_topics(s, [s.kafka.events_topic], s.kafka.partitions)
        p = producer(s)
        for e in evs:
            p.produce(s.kafka.events_topic, orjson.dumps(e), key=str(e["user_id"]).encode())
        for part in range(s.kafka.partitions):  # moves the watermark past both hours in every partition
            tick = {"user_id": 0, "event_type": "login", "event_time": T0 + 3 * 60 * MIN}
            p.produce(s.kafka.events_topic, orjson.dumps(tick), partition=part)
        assert p.flush(60) == 0

        history = [
            orjson.loads(line) for f in s.catalog_history_dir.rglob("part-*") for line in f.read_bytes().splitlines()
        ]
        clicks, purchases, _ = reference(history, evs)
        assert {w for w, _ in clicks} == {T0, T0 + 60 * MIN}
        while features(s, "stream") != (clicks, purchases):
            assert job.poll() is None, job.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, f"windows after the catalogue's last change: {features(s, 'stream')}"
            time.sleep(1)
    finally:
        job.send_signal(signal.SIGTERM)
        out, _ = job.communicate(timeout=120)
    assert job.returncode == 0, out.decode()[-3000:]
