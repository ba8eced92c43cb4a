"""What the chaos drills share: a long-running stream job on this home's services (`stream
run`), events produced up front or at a pace while a fault lasts, waiting until every sink
caught up, and every sink's content to compare with an uninterrupted run's."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import requests

from common.clickhouse import close_clients, get_client
from common.kafka import bootstrap, ensure_topics, partition_ends, producer, send
from common.redis_store import get_redis
from common.services import local_services
from common.settings import Settings
from features.adapters import to_json
from features.ecommerce import STREAM_FEATURES
from features.generator import GeneratorConfig, generate
from streaming.job import compiled_queries
from streaming.loader import LOADERS
from streaming.loader_process import process_name
from tests.conftest import cli, free_port, isolated
from warehouse.tables import stream_table

TABLES = tuple(stream_table(f) for f in STREAM_FEATURES)
TICK_USER = 0
DRILL_EVENTS = 60_000  # the drills' events, and those of their shared uninterrupted run
DRILL_SEED = 13


def make_settings(home: Path, **env_extra: str) -> tuple[Settings, dict[str, str]]:
    """Frequent checkpoints and archive rollovers, so a drill sees its outputs soon; Flink's REST
    API on a free port too."""
    extra = {
        "LAMBDA_FEATURES_STREAM__CHECKPOINT_INTERVAL_MS": "1000",
        "LAMBDA_FEATURES_STREAM__ARCHIVE_ROLLOVER_S": "2",
        "LAMBDA_FEATURES_STREAM__REST_PORT": str(free_port()),
    }
    return isolated(home, **(extra | env_extra))


def events(count: int, seed: int = 11) -> list[dict]:
    # no lateness: Flink does not checkpoint watermarks, so a restored job cannot tell which
    # replayed events an uninterrupted one would have seen as late; and without late events
    # the results do not depend on how the partitions' reads interleave
    return list(generate(GeneratorConfig(seed=seed, late=0.0, events_per_second=100), count))


def ticks(settings: Settings, after_ms: int) -> list[tuple[int, bytes]]:
    """One tick per partition, far enough after the last event to fire every window."""
    t = after_ms + 7_200_000
    return [
        (part, orjson.dumps({"event_id": f"tick-{part}", "user_id": TICK_USER, "event_type": "login", "event_time": t}))
        for part in range(settings.kafka.partitions)
    ]


def produce(settings: Settings, batch: list[dict], tick_after: int | None = None) -> None:
    """Events into this home's broker (started here); with tick_after (the last event time),
    the ticks after them."""
    for svc in local_services(settings):
        svc.start()
    ensure_topics(settings, [settings.kafka.events_topic], settings.kafka.partitions)
    p = producer(settings)
    for e in batch:
        send(p, settings.kafka.events_topic, to_json(e), key=str(e["user_id"]).encode())
    for part, tick in ticks(settings, tick_after) if tick_after else ():
        send(p, settings.kafka.events_topic, tick, partition=part)
    assert p.flush(120) == 0


class Feeder(threading.Thread):
    """Produces events at `rate` per second once `go` is set, the rest at once after `hurry`,
    then the ticks: a stream that keeps flowing while a drill's faults last."""

    def __init__(self, settings: Settings, batch: list[dict], rate: int) -> None:
        super().__init__(daemon=True)
        self.settings, self.batch, self.rate = settings, batch, rate
        self.go, self.hurry = threading.Event(), threading.Event()
        self.sent = 0
        self.error: BaseException | None = None

    @property
    def pacing(self) -> bool:
        """Still sending at its pace: the stream is mid-way."""
        return self.go.is_set() and not self.hurry.is_set() and self.sent < len(self.batch)

    def run(self) -> None:
        try:
            p = producer(self.settings)
            topic = self.settings.kafka.events_topic
            self.go.wait()
            step = max(1, self.rate // 10)
            while self.sent < len(self.batch):
                started = time.monotonic()
                for e in self.batch[self.sent : self.sent + step]:
                    send(p, topic, to_json(e), key=str(e["user_id"]).encode())
                self.sent = min(len(self.batch), self.sent + step)
                if not self.hurry.is_set():
                    time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
            for part, tick in ticks(self.settings, max(e["event_time"] for e in self.batch)):
                send(p, topic, tick, partition=part)
            assert p.flush(120) == 0, "events not delivered"
        except BaseException as e:  # seen by the test through finish()
            self.error = e

    def finish(self) -> None:
        self.hurry.set()
        self.join(180)
        assert not self.is_alive() and self.error is None, self.error


def loader_pid(job: subprocess.Popen, role: str) -> int | None:
    """The pid of the job's loader process of that role (a child named by process_name)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, rest = stat.read_text().rsplit(") ", 1)
        except OSError:
            continue
        if name.split(" (", 1)[1] == process_name(role) and int(rest.split()[1]) == job.pid:
            return int(stat.parent.name)
    return None


def stream_run(env: dict[str, str]) -> subprocess.Popen:
    return cli(["stream", "run", "--start", "earliest"], env)


class DrainedJob:
    """`stream run` whose output is read as it comes (a long drill must not fill the pipe)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = stream_run(env)
        self.pid = self.proc.pid
        self.out = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out += line

    def poll(self) -> int | None:
        return self.proc.poll()

    def alive(self) -> None:
        assert self.proc.poll() is None, bytes(self.out).decode()[-3000:]

    def stop(self, timeout_s: float = 180) -> bytes:
        """A clean stop: SIGTERM cancels the job; its loaders flush, commit and exit."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.out += b"\n--- did not stop; Flink's threads:\n" + _java_threads(self.pid)
            raise
        self.reader.join(10)
        assert self.proc.returncode == 0, bytes(self.out).decode()[-3000:]
        return bytes(self.out)

    def save(self, path: Path) -> None:
        """The whole output, to look at after a failure."""
        path.write_bytes(bytes(self.out))


def _java_threads(pgid: int) -> bytes:
    """The thread dumps of the Java processes of a process group (jcmd)."""
    out = b""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and stat.parent.joinpath("comm").read_text().strip() == "java":
            dump = subprocess.run(["jcmd", stat.parent.name, "Thread.print"], capture_output=True, timeout=60)
            out += dump.stdout + dump.stderr
    return out


def archived(settings: Settings) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in settings.archive_dir.rglob("part-*"))


def committed_offsets(settings: Settings, group: str, parts: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap(settings), "group.id": group})
    try:
        done = c.committed([TopicPartition(t, p) for t, p in parts], timeout=10)
        return {(tp.topic, tp.partition): tp.offset for tp in done}
    finally:
        c.close()


def loaders_caught_up(settings: Settings) -> bool:
    """Whether each loader committed every feature change on its topics."""
    k = settings.kafka
    queries = [q for _, q in compiled_queries(settings)]
    for role, loader in LOADERS.items():
        topics = [k.features_topic_prefix + q.output for q in queries if loader.wants(q)]
        ends = partition_ends(settings, topics)
        done = committed_offsets(settings, f"{k.group_id}-{role}", list(ends))
        if any(done.get(tp, -1) < end for tp, end in ends.items() if end > 0):
            return False
    return True


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str, alive: Callable[[], None] = lambda: None):
    """Until predicate() is true (returned); alive() raises when what should run died."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive()
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def wait_caught_up(settings: Settings, expected: int, alive: Callable[[], None], timeout_s: float = 1500) -> None:
    """Every event and tick archived (so every feature change is on its topic: the job flushes
    them at the checkpoint that commits the archive), and both loaders committed them all
    (each commits only what its store holds)."""
    total = expected + settings.kafka.partitions
    wait_for(lambda: archived(settings) >= total and loaders_caught_up(settings), timeout_s, "every sink", alive)


def snapshot(settings: Settings) -> dict:
    """Every sink's final content; stops this home's services."""
    r = get_redis(settings)
    online = {k: r.hgetall(k) for k in r.scan_iter("user:*", count=1000)}
    for svc in local_services(settings):
        svc.stop()
    ch = get_client(settings)
    tables = {t: sorted(ch.query(f"SELECT * FROM features.{t} FINAL").result_rows, key=repr) for t in TABLES}
    close_clients()
    events: Counter = Counter()
    for part in settings.archive_dir.rglob("part-*"):
        for line in part.read_bytes().splitlines():
            events[orjson.loads(line)["event_id"]] += 1
    return {"online": online, "tables": tables, "archive": events}


def assert_same_sinks(a: dict, b: dict, evs: list[dict], partitions: int) -> None:
    """0 lost, 0 doubled: each event (and tick) archived once, every table and the online store equal."""
    assert sum(a["archive"].values()) == len(evs) + partitions
    assert a["archive"] == b["archive"]
    for t in TABLES:
        assert a["tables"][t] == b["tables"][t], t
    minutes = {e["event_time"] // 60_000 for e in evs}
    assert len(a["tables"]["uv_1m_stream"]) >= 0.9 * len(minutes)  # the ticks fired the windows
    assert a["online"] == b["online"]


def firing(settings: Settings, alert: str, **labels: str) -> bool:
    """Whether the local Prometheus has the alert firing (with these labels)."""
    selector = ", ".join([f'alertname="{alert}"', 'alertstate="firing"', *(f'{k}="{v}"' for k, v in labels.items())])
    url = f"http://127.0.0.1:{settings.monitoring.prometheus_port}/api/v1/query"
    try:
        r = requests.get(url, params={"query": f"ALERTS{{{selector}}}"}, timeout=2)
        return bool(r.json()["data"]["result"])
    except (requests.RequestException, ValueError, KeyError):
        return False


def uninterrupted_run(home: Path, **env_extra: str) -> dict:
    """The run the drills compare with (conftest's `uninterrupted` fixture): the drills' events
    all there before the job starts, no fault; every sink's content."""
    s, env = make_settings(home, LAMBDA_FEATURES_MONITORING__ENABLED="false", **env_extra)
    evs = events(DRILL_EVENTS, DRILL_SEED)
    try:
        produce(s, evs, tick_after=max(e["event_time"] for e in evs))
        job = DrainedJob(env)
        wait_caught_up(s, DRILL_EVENTS, job.alive)
        job.stop()
        sinks = snapshot(s)
    finally:  # before the drills: the snapshot is all they need, not its services for the whole session
        for svc in local_services(s):
            svc.stop()
    return sinks
