"""Tiering: feature days older than `tiering.hot_days` move from ClickHouse to object storage
(S3/OSS, or a local directory) as Parquet, and the serving views keep reading them there.

The public API (also what Dagster calls): `run`, `restore`, `verify`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from common.settings import Settings
from tiering import cold_views, manifest
from tiering.mover import Hook, Move
from tiering.mover import move as _move
from tiering.mover import restore as _restore
from tiering.partitions import Partition, cold_fingerprint, due, feature_of
from tiering.store import ObjectStore, open_store
from warehouse.schema import create_tables

__all__ = ["Check", "Move", "Partition", "TierReport", "restore", "run", "verify"]


@dataclass
class TierReport:
    """What a run planned and moved; totals over the moves."""

    today: date
    cutoff: date  # days before this one were due
    dry_run: bool
    planned: list[Partition] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    skipped: list[Partition] = field(default_factory=list)  # changed during the move; they stay hot

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.moves)

    @property
    def bytes(self) -> int:
        return sum(m.bytes for m in self.moves)

    @property
    def objects(self) -> int:
        return sum(m.objects for m in self.moves)


@dataclass(frozen=True)
class Check:
    """A moved day: rows recorded before the move against rows now hot and cold."""

    table: str
    day: date
    recorded: int
    hot: int
    cold: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.hot + self.cold == self.recorded


def _tables(settings: Settings) -> None:
    """The schema and the manifest."""
    create_tables(settings)
    manifest.create(settings)


def _open(settings: Settings) -> ObjectStore:
    """The checked store, the named collection and cold views ClickHouse reads it through, and the tables."""
    store = open_store(settings)
    credentials = store.clickhouse_params()
    if credentials is not None:
        cold_views.create_collection(settings, credentials)
    _tables(settings)
    cold_views.refresh(settings)  # also heals a run killed between recording a move and rebuilding a view
    return store


def run(
    settings: Settings,
    today: date | None = None,
    dry_run: bool = False,
    include_restored: bool = False,
    hook: Hook | None = None,
) -> TierReport:
    """Move every due day (older than hot_days before `today`, default the UTC date); days
    brought back by `restore` stay hot unless include_restored."""
    today = today or datetime.now(UTC).date()
    store = _open(settings)
    pinned = set()
    if not include_restored:
        pinned = {(e.table, e.day) for e in manifest.entries(settings) if e.state == "restored"}
    report = TierReport(today, today - timedelta(days=settings.tiering.hot_days), dry_run)
    report.planned = [p for p in due(settings, today) if (p.table, p.day) not in pinned]
    if dry_run:
        return report
    for p in report.planned:
        moved = _move(settings, store, p.table, p.day, hook)
        if moved:
            report.moves.append(moved)
        else:
            report.skipped.append(p)
    return report


def restore(settings: Settings, table: str, day: date, hook: Hook | None = None) -> int:
    """Bring a cold day of a table back into ClickHouse; returns its rows. It then stays hot
    until `run(..., include_restored=True)`."""
    feature_of(settings, table)
    return _restore(settings, _open(settings), table, day, hook)


def verify(settings: Settings) -> list[Check]:
    """For every day in the cold tier: hot + cold rows equal the rows recorded before the move."""
    from common.errors import PlatformError
    from tiering.partitions import hot_fingerprint

    _open(settings)
    out = []
    for e in manifest.entries(settings):
        if e.state != "cold":
            continue
        hot = hot_fingerprint(settings, e.table, e.day)[0]
        try:
            cold, error = cold_fingerprint(settings, e.table, e.day)[0], ""
        except PlatformError as err:
            cold, error = 0, err.what
        out.append(Check(e.table, e.day, e.rows, hot, cold, error))
    return out


def status(settings: Settings) -> list[manifest.Entry]:
    """The manifest: every day tiering moved or restored."""
    _tables(settings)
    return manifest.entries(settings)
