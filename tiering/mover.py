"""Moving one day to the cold tier and back. Each step leaves a state a re-run completes:
a day stays in MergeTree until its objects are verified and recorded, and the views serve a
day from MergeTree whenever it is there, so no query ever sees it twice or not at all."""

from __future__ import annotations

import logging
import os
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from common.clickhouse import get_client
from common.errors import PlatformError
from common.settings import Settings
from tiering import cold_views, manifest
from tiering.layout import cold_reader, day_prefix, object_key, uri
from tiering.partitions import cold_fingerprint, export, feature_of, hot_fingerprint
from tiering.store import ObjectStore

log = logging.getLogger(__name__)
CRASH_ENV = "LF_TEST_CRASH_AT"  # tests: SIGKILL this process right after the named step
Hook = Callable[[str, str, date], None]


@dataclass(frozen=True)
class Move:
    """One day moved: its rows, the Parquet bytes and objects written, and where."""

    table: str
    day: date
    rows: int
    bytes: int
    objects: int
    uri: str


def step(name: str, table: str, day: date, hook: Hook | None = None) -> None:
    """A named point between two steps; tests crash the process here for real."""
    if hook:
        hook(name, table, day)
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _drop(settings: Settings, table: str, day: date) -> None:
    get_client(settings).command(f"ALTER TABLE {settings.clickhouse.database}.{table} DROP PARTITION '{day}'")


def move(settings: Settings, store: ObjectStore, table: str, day: date, hook: Hook | None = None) -> Move | None:
    """Write, verify, record, then drop the hot day. None when the day changed meanwhile
    (it stays hot; the next run moves it)."""
    rows, checksum = hot_fingerprint(settings, table, day)
    where = uri(settings, table, day)
    before = manifest.get(settings, table, day)
    if not (before and before.state == "cold" and (before.rows, before.checksum) == (rows, checksum)):
        manifest.record(settings, manifest.Entry(table, day, "moving", rows, checksum, uri=where))
        prefix = day_prefix(settings, table, day)
        store.delete(store.keys(prefix))  # a crashed attempt's objects, or an older copy of a re-written day
        tmp_root = settings.home / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
            files = export(settings, table, day, Path(tmp))
            step("exported", table, day, hook)
            keys = [object_key(settings, table, day, n) for n in range(len(files))]
            for path, key in zip(files, keys, strict=True):
                store.put(path, key)
        step("written", table, day, hook)
        _verify_written(settings, store, table, day, keys, (rows, checksum))
        step("verified", table, day, hook)
        size = sum(store.size(k) for k in keys)
        manifest.record(settings, manifest.Entry(table, day, "cold", rows, checksum, size, keys, where))
        step("recorded", table, day, hook)
    else:  # an earlier run stopped after recording: check the objects again, then finish
        _verify_written(settings, store, table, day, before.objects, (rows, checksum))
        keys, size = before.objects, before.bytes
    cold_views.refresh(settings, [table])  # the views now read the day from the store (while hot, from MergeTree)
    if hot_fingerprint(settings, table, day) != (rows, checksum):
        log.warning("%s %s changed during its move; it stays hot and moves on the next run", table, day)
        return None
    _drop(settings, table, day)
    step("dropped", table, day, hook)
    return Move(table, day, rows, size, len(keys), where)


def _verify_written(
    settings: Settings, store: ObjectStore, table: str, day: date, keys: list[str], expected: tuple[int, int]
) -> None:
    """The store holds exactly these objects for the day, and they read back as the hot rows."""
    where = uri(settings, table, day)
    found = store.keys(day_prefix(settings, table, day))
    if sorted(found) != sorted(keys):
        raise PlatformError(
            f"{where} holds {len(found)} object(s), expected {len(keys)} ({', '.join(found[:5])})",
            "the hot data is untouched; re-run `lambda-features tier run`",
        )
    got = cold_fingerprint(settings, table, day)
    if got != expected:
        raise PlatformError(
            f"verification failed for {where}: wrote {expected[0]} rows (checksum {expected[1]}), "
            f"read back {got[0]} rows (checksum {got[1]})",
            "the hot data is untouched; re-run `lambda-features tier run`",
        )


def _swap_in(settings: Settings, table: str, day: date) -> None:
    """Read the cold day into an empty copy of the table, then swap it in as the day's partition."""
    f = feature_of(settings, table)
    db = settings.clickhouse.database
    staging = f"{db}.{table}_restore"
    client = get_client(settings)
    client.command(f"DROP TABLE IF EXISTS {staging}")
    client.command(f"CREATE TABLE {staging} AS {db}.{table}")
    cols = ", ".join(f"`{c.name}`" for c in f.columns)
    client.command(f"INSERT INTO {staging} ({cols}) SELECT {cols} FROM {cold_reader(settings, table, [day], f)}")
    client.command(f"ALTER TABLE {db}.{table} REPLACE PARTITION '{day}' FROM {staging}")
    client.command(f"DROP TABLE {staging}")


def restore(settings: Settings, store: ObjectStore, table: str, day: date, hook: Hook | None = None) -> int:
    """Bring a cold day back into MergeTree (atomically, through a staging table); returns its rows."""
    entry = manifest.get(settings, table, day)
    if entry is None or entry.state == "moving":
        raise PlatformError(f"{table} has no cold day {day}", "`lambda-features tier status` lists the cold days")
    if entry.state == "cold":
        hot = hot_fingerprint(settings, table, day)
        if hot[0] == 0:
            if cold_fingerprint(settings, table, day) != (entry.rows, entry.checksum):
                raise PlatformError(
                    f"{uri(settings, table, day)} does not read back as the {entry.rows} rows recorded",
                    "nothing was restored; check the objects in the store",
                )
            _swap_in(settings, table, day)
            step("inserted", table, day, hook)
        elif hot != (entry.rows, entry.checksum):
            raise PlatformError(
                f"{table} {day} was written again after it was tiered; its hot rows are what the views serve",
                "`lambda-features tier run` moves the newer rows (the older cold copy is replaced)",
            )
        manifest.record(settings, manifest.Entry(table, day, "restored", entry.rows, entry.checksum, uri=entry.uri))
        step("recorded", table, day, hook)
    cold_views.refresh(settings, [table])  # before the objects go
    store.delete(store.keys(day_prefix(settings, table, day)))
    return entry.rows
