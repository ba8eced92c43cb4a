"""SQL over what the checks read: feature tables, the raw-event archive and the dead
letters, all through ClickHouse (`file()` reads the archive in place)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from common import archive as layout
from common.clickhouse import first_time_column, stream_table
from common.settings import Settings
from features.definitions import Feature, Hop, Session, Tumble, WindowAggregate
from features.events import EVENT_COLUMNS, SOURCE_COLUMNS

ARCHIVE_STRUCTURE = ", ".join(f"`{c.name}` {c.clickhouse}" for c in (*EVENT_COLUMNS, *SOURCE_COLUMNS)) + ", late Bool"
POSITION_STRUCTURE = "src_part Nullable(Int32), src_off Nullable(Int64)"
JSON_SETTINGS = {"input_format_skip_unknown_fields": 1}


def day_start(day: date) -> str:
    """A SQL DateTime64 literal for the day's first instant (UTC)."""
    return f"toDateTime64('{datetime.combine(day, time())}', 3, 'UTC')"


def day_end(day: date) -> str:
    return day_start(day + timedelta(days=1))


def archive(settings: Settings, days: list[date]) -> str:
    """The archived events of these days as a table function (absent days give no rows)."""
    return f"file('{layout.days_parts(settings, days)}', JSONEachRow, '{ARCHIVE_STRUCTURE}')"


def dead_letter_positions(settings: Settings) -> str:
    """Source positions of every dead letter: rule breaks (stream) and unparseable lines (parse)."""
    d = settings.dead_letter_dir
    return (
        f"SELECT src_part, src_off FROM file('{d}/stream/part-*', JSONEachRow, '{POSITION_STRUCTURE}') "
        f"UNION ALL SELECT src_part, src_off FROM file('{d}/parse/*.jsonl', JSONEachRow, '{POSITION_STRUCTURE}')"
    )


def table(settings: Settings, f: Feature, side: str) -> str:
    """The relation holding a feature's rows: side 'stream' or 'batch' (FINAL where it is a table)."""
    db = settings.clickhouse.database
    if f.layer == "batch":
        return f"{db}.{f.name} FINAL"
    if side == "batch":
        return f"{db}.{f.name}_batch FINAL"
    view_over_tiles = stream_table(f) != f"{f.name}_stream"  # the view already reads the tiles FINAL
    return f"{db}.{f.name}_stream" + ("" if view_over_tiles else " FINAL")


def version_column(f: Feature) -> str:
    """The column dating a row: window or session start, update time, or as_of."""
    if f.layer == "batch":
        return "as_of"
    return f.columns[-1].name if f.updating else first_time_column(f)


def day_filter(f: Feature, day: date) -> str:
    """Rows that belong to the day: windows starting on it, values updated on it, as_of = day."""
    return f"toDate({version_column(f)}) = '{day.isoformat()}'"


def window_span_s(f: Feature) -> int:
    """How far a row's newest time may trail the events behind it (window size or session gap)."""
    agg = f.aggregation
    if not isinstance(agg, WindowAggregate):
        return 0
    w = agg.window
    if isinstance(w, Tumble):
        return w.size_s
    if isinstance(w, Hop):
        return w.slide_s  # the stream writes slide-sized tiles
    assert isinstance(w, Session)
    return w.gap_s


def sql_value(v: Any) -> str:
    """A value from a result row, as shown in a sample."""
    if v is None:
        return "NULL"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return str(v)


def describe_key(names: list[str], values: tuple) -> str:
    return ", ".join(f"{n}={sql_value(v)}" for n, v in zip(names, values, strict=True))
