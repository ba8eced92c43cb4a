"""The manifest: one row per (table, day) that tiering touched, in ClickHouse
(`features.tiered_partitions`). States: `moving` (rows recorded before the move, objects not
yet verified), `cold` (verified in the store; the views read it there), `restored` (hot again)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from common.clickhouse import get_client
from common.settings import Settings

TABLE = "tiered_partitions"
COLUMNS = ("table", "day", "state", "rows", "checksum", "bytes", "objects", "uri", "updated_at")


@dataclass(frozen=True)
class Entry:
    table: str
    day: date
    state: str
    rows: int
    checksum: int
    bytes: int = 0
    objects: list[str] = field(default_factory=list)
    uri: str = ""


def create(settings: Settings) -> None:
    """The manifest table, when missing."""
    get_client(settings).command(
        f"CREATE TABLE IF NOT EXISTS {settings.clickhouse.database}.{TABLE} (`table` String, day Date, "
        "state LowCardinality(String), rows UInt64, checksum UInt64, bytes UInt64, objects Array(String), "
        "uri String, updated_at DateTime64(6, 'UTC')) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (`table`, day)"
    )


def record(settings: Settings, e: Entry) -> None:
    row = [e.table, e.day, e.state, e.rows, e.checksum, e.bytes, e.objects, e.uri, datetime.now(UTC)]
    get_client(settings).insert(f"{settings.clickhouse.database}.{TABLE}", [row], column_names=COLUMNS)


def entries(settings: Settings, table: str | None = None, day: date | None = None) -> list[Entry]:
    where = ["1"]
    params: dict[str, object] = {}
    if table:
        where.append("`table` = {t:String}")
        params["t"] = table
    if day:
        where.append("day = {d:Date}")
        params["d"] = day
    rows = (
        get_client(settings)
        .query(
            f"SELECT {', '.join(f'`{c}`' for c in COLUMNS[:-1])} FROM {settings.clickhouse.database}.{TABLE} "
            f"FINAL WHERE {' AND '.join(where)} ORDER BY day, `table`",
            parameters=params,
        )
        .result_rows
    )
    return [Entry(*r) for r in rows]


def get(settings: Settings, table: str, day: date) -> Entry | None:
    found = entries(settings, table, day)
    return found[0] if found else None


def cold_days(settings: Settings) -> dict[str, list[date]]:
    """The days in the cold tier, per table."""
    rows = (
        get_client(settings)
        .query(
            f"SELECT `table`, arraySort(groupArray(day)) FROM {settings.clickhouse.database}.{TABLE} FINAL "
            "WHERE state = 'cold' GROUP BY `table`"
        )
        .result_rows
    )
    return {t: days for t, days in rows}
