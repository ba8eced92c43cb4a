"""The manifest: one row per (table, day) that tiering touched, in ClickHouse
(`features.tiered_partitions`). States: `moving` (rows recorded before the move, objects not
yet verified), `cold` (verified in the store; the views read it there), `restored` (hot again)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from common.clickhouse import TIER_MANIFEST, get_client
from common.settings import Settings

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


def record(settings: Settings, e: Entry) -> None:
    row = [e.table, e.day, e.state, e.rows, e.checksum, e.bytes, e.objects, e.uri, datetime.now(UTC)]
    get_client(settings).insert(f"{settings.clickhouse.database}.{TIER_MANIFEST}", [row], column_names=COLUMNS)


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
            f"SELECT {', '.join(f'`{c}`' for c in COLUMNS[:-1])} FROM {settings.clickhouse.database}.{TIER_MANIFEST} "
            f"FINAL WHERE {' AND '.join(where)} ORDER BY day, `table`",
            parameters=params,
        )
        .result_rows
    )
    return [Entry(*r) for r in rows]


def get(settings: Settings, table: str, day: date) -> Entry | None:
    found = entries(settings, table, day)
    return found[0] if found else None
