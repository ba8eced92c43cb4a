"""The CDC relay: every change of the table `items`, read from the binlog (mysql-replication),
to the Kafka topic CATALOG__TOPIC as a Debezium change message (debezium-json: before, after,
op, source with its binlog position), keyed by item_id.

Exactly once with effect, across kills:
- it saves its binlog position (a transaction boundary) only after the broker acknowledged
  every change before it, so a restart re-reads whatever was not acknowledged;
- the changes of a re-read transaction that are already on the topic are skipped: each
  partition's last message names its binlog position (file, pos, row), and a change goes to
  one partition (item_id mod partitions) in binlog order, so everything up to that position
  on that partition was delivered.

Run by `common.services.relay_service`: python -m catalog.relay --settings FILE
(`lambda-features catalog relay` runs it in the foreground)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import orjson
from prometheus_client import Counter, Gauge

from common.catalog_db import TABLE, connect, target
from common.errors import PlatformError
from common.kafka import bootstrap, ensure_topics, last_messages, partitions_of
from common.metrics import MetricsServer
from common.settings import Settings

log = logging.getLogger(__name__)
RELAYED = Counter("lf_catalog_changes_total", "Catalogue changes the relay put on the topic", ["op"])
SKIPPED = Counter("lf_catalog_changes_skipped_total", "Re-read catalogue changes already on the topic")
RELAY_POSITION = Gauge("lf_catalog_relay_binlog_position", "The relay's saved binlog position", ["file"])
LAST_CHANGE = Gauge("lf_catalog_last_change_timestamp_seconds", "Binlog time of the newest change relayed")
# Each look at a caught-up binlog reconnects (non-blocking dumps end at its end), which costs CPU
# in the relay and in the database: 0.2 s after a change, doubling to 1 s while the catalogue is idle.
IDLE_WAIT_S = (0.2, 1.0)

Source = tuple[int, int, int]  # (binlog file number, position after the rows event, row index in it)


def binlog_number(file: str) -> int:
    """binlog.000042 -> 42: the order of binlog files."""
    try:
        return int(file.rsplit(".", 1)[1])
    except (IndexError, ValueError):
        raise PlatformError(f"unexpected binlog file name {file!r}") from None


def position_file(settings: Settings) -> Path:
    return settings.home / "catalog" / "relay-position.json"


def saved_position(settings: Settings) -> tuple[str, int] | None:
    """The binlog file and position the relay resumes from, or None before its first save."""
    try:
        d = orjson.loads(position_file(settings).read_bytes())
        return d["file"], int(d["pos"])
    except FileNotFoundError:
        return None


def save_position(settings: Settings, file: str, pos: int) -> None:
    """Atomically: a kill leaves the old position or the new one."""
    path = position_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        fh.write(orjson.dumps({"file": file, "pos": pos, "saved_at": datetime.now(UTC).isoformat()}))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    RELAY_POSITION.clear()
    RELAY_POSITION.labels(file).set(pos)


def _json_value(v: object) -> object:
    """A column value as Debezium writes it: DECIMAL as a number (decimal.handling.mode=double),
    DATETIME as epoch milliseconds (io.debezium.time.Timestamp), dates as days since the epoch."""
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, datetime):
        return int(v.replace(tzinfo=UTC).timestamp() * 1000)  # the server's time zone is UTC
    if isinstance(v, date):
        return (v - date(1970, 1, 1)).days
    return v


def _row(values: dict | None) -> dict | None:
    return None if values is None else {k: _json_value(v) for k, v in values.items()}


def change_message(op: str, before: dict | None, after: dict | None, meta: dict) -> bytes:
    """One change in Debezium's envelope, without the schema part (debezium-json)."""
    return orjson.dumps(
        {
            "before": _row(before),
            "after": _row(after),
            "source": meta,
            "op": op,
            "ts_ms": int(time.time() * 1000),
            "transaction": None,
        }
    )


def published_tail(settings: Settings) -> dict[int, Source]:
    """Per partition of the topic, the binlog position of its last message (absent when empty)."""
    tail = last_messages(settings, settings.catalog.topic)
    out = {}
    for p, (_, value) in tail.items():
        src = orjson.loads(value)["source"]
        out[p] = (binlog_number(src["file"]), int(src["pos"]), int(src["row"]))
    return out


@dataclass
class Relay:
    """One relay run: from the saved position (or the oldest binlog) until stopped."""

    settings: Settings
    hold_ack_s: float = 0.0  # tests: a pause after the broker's acknowledgment, before the save
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)
    relayed: int = 0
    skipped: int = 0  # re-read changes that were already on the topic
    saved: tuple[str, int] | None = None

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.errors.append(str(err))

    def run(self) -> None:
        from confluent_kafka import Producer
        from pymysqlreplication import BinLogStreamReader
        from pymysqlreplication.event import QueryEvent, XidEvent
        from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

        s = self.settings
        conn = connect(s, autocommit=True)  # creates the table, starts the local MariaDB if needed
        with conn.cursor() as cur:
            cur.execute("SELECT @@server_id")
            (server_id,) = cur.fetchone()
            cur.execute("SHOW BINARY LOGS")
            logs = [r[0] for r in cur.fetchall()]
        conn.close()
        if not logs:
            raise PlatformError(f"the catalogue server {target(s).host} writes no binlog", "start it with log-bin")
        ensure_topics(s, [s.catalog.topic], s.catalog.partitions)
        parts = partitions_of(s, s.catalog.topic)
        tail = published_tail(s)
        saved = saved_position(s)
        file, pos = self.saved = saved or (logs[0], 4)
        log.info("catalogue relay: from %s:%d to %s (%d partition(s))", file, pos, s.catalog.topic, len(parts))
        producer = Producer(
            {
                "bootstrap.servers": bootstrap(s),
                "enable.idempotence": True,  # no reordering or duplicates from retries within a run
                "acks": "all",
                "linger.ms": 5,
            }
        )
        t = target(s)
        stream = BinLogStreamReader(
            connection_settings=t.connection_settings(),
            server_id=s.catalog.relay_server_id,
            resume_stream=True,
            log_file=file,
            log_pos=pos,
            blocking=False,
            only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent, XidEvent, QueryEvent],
            only_schemas=[t.database],
            only_tables=[TABLE],
            is_mariadb=False,  # file/position dumps (the MariaDB dialect here resumes by GTID only)
            enable_logging=False,
        )
        pending = 0
        idle_wait = IDLE_WAIT_S[0]
        try:
            while not self.stop.is_set():
                for ev in stream:  # non-blocking: ends when the binlog has nothing new
                    idle_wait = IDLE_WAIT_S[0]
                    if isinstance(ev, XidEvent | QueryEvent):
                        if isinstance(ev, QueryEvent) and ev.query.strip().upper() != "COMMIT":
                            continue
                        self._commit(producer, stream.log_file, stream.log_pos, pending)
                        pending = 0
                        continue
                    op = {WriteRowsEvent: "c", UpdateRowsEvent: "u", DeleteRowsEvent: "d"}[type(ev)]
                    for i, row in enumerate(ev.rows):
                        before = row.get("before_values") if op == "u" else (row["values"] if op == "d" else None)
                        after = row.get("after_values") if op == "u" else (row["values"] if op == "c" else None)
                        item_id = (after or before)["item_id"]
                        part = parts[item_id % len(parts)]
                        src: Source = (binlog_number(stream.log_file), stream.log_pos, i)
                        if part in tail and src <= tail[part]:
                            SKIPPED.inc()
                            self.skipped += 1
                            continue
                        meta = {
                            "version": "lambda-features-relay",
                            "connector": "mysql",
                            "name": s.catalog.topic,
                            "ts_ms": ev.timestamp * 1000,
                            "snapshot": "false",
                            "db": t.database,
                            "table": TABLE,
                            "server_id": server_id,
                            "file": stream.log_file,
                            "pos": stream.log_pos,
                            "row": i,
                        }
                        producer.produce(
                            s.catalog.topic,
                            key=orjson.dumps({"item_id": item_id}),
                            value=change_message(op, before, after, meta),
                            partition=part,
                            on_delivery=self._delivered,
                        )
                        RELAYED.labels(op).inc()
                        LAST_CHANGE.set(ev.timestamp)
                        pending += 1
                    producer.poll(0)
                    if self.stop.is_set():
                        break
                else:  # caught up, at a transaction boundary: confirm the position, look again shortly
                    if (stream.log_file, stream.log_pos) != self.saved:
                        self._commit(producer, stream.log_file, stream.log_pos, pending)
                        pending = 0
                    self.stop.wait(idle_wait)
                    idle_wait = min(idle_wait * 2, IDLE_WAIT_S[1])
        finally:
            stream.close()
            producer.flush(10)

    def _commit(self, producer, file: str, pos: int, changes: int) -> None:
        """A transaction ended: once the broker acknowledged its changes, save the position after it."""
        if changes:
            waited = 0
            # a broker away (restarting, say) is waited for, as the loaders do; the client gives
            # up on a change after its message.timeout.ms (5 min), which lands in self.errors
            while producer.flush(5) and not self.errors and not self.stop.is_set():
                waited += 5
                if waited == 10:
                    log.warning("catalogue relay: waiting for the broker to acknowledge %d change(s)", changes)
            if len(producer) or self.errors:
                raise PlatformError(
                    f"the broker did not acknowledge {changes} catalogue change(s): {self.errors[:3]}",
                    "check Kafka; the relay resumes from its last saved position when restarted",
                )
            self.relayed += changes
            if self.hold_ack_s:
                time.sleep(self.hold_ack_s)
        save_position(self.settings, file, pos)
        self.saved = (file, pos)
        if self.skipped:
            log.info("skipped %d re-read change(s) already on the topic, up to %s:%d", self.skipped, file, pos)
            self.skipped = 0


def run_relay(settings: Settings, hold_ack_s: float = 0.0) -> Relay:
    """Run the relay in this process until SIGTERM or SIGINT, with its /metrics on
    CATALOG__RELAY_PORT (served even with monitoring off: it is how its supervisor sees it up)."""
    relay = Relay(settings, hold_ack_s)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: relay.stop.set())
    try:
        server = MetricsServer(settings.catalog.relay_port)
    except OSError as e:
        raise PlatformError(
            f"the catalogue relay cannot listen on 127.0.0.1:{settings.catalog.relay_port}: {e}",
            "stop what holds the port or set LAMBDA_FEATURES_CATALOG__RELAY_PORT",
        ) from None
    try:
        relay.run()
    finally:
        server.stop()
    return relay


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings", type=Path, required=True, help="the platform settings, as JSON")
    p.add_argument("--hold-ack-s", type=float, default=0.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_relay(Settings.model_validate_json(args.settings.read_text()), args.hold_ack_s)
    except PlatformError as e:
        log.error("%s", e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
