"""SQL over what the checks read: feature tables (hot or cold alike), the raw-event archive
and the dead letters, all through ClickHouse (`file()` reads the archive in place)."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Any

from common import archive as layout
from common.repository import load_features
from common.settings import Settings
from features.definitions import Feature, Hop, Session, Tumble, WindowAggregate
from features.events import SOURCE_COLUMNS
from warehouse.rows import rows as warehouse_rows
from warehouse.tables import hop_of, stream_table
from warehouse.views import windows_from_tiles

POSITION_STRUCTURE = "src_part Nullable(Int32), src_off Nullable(Int64)"
JSON_SETTINGS = {"input_format_skip_unknown_fields": 1}


def day_start(day: date) -> str:
    """A SQL DateTime64 literal for the day's first instant (UTC)."""
    return f"toDateTime64('{datetime.combine(day, time())}', 3, 'UTC')"


def day_end(day: date) -> str:
    return day_start(day + timedelta(days=1))


def archive(settings: Settings, days: list[date]) -> str:
    """The archived events of these days as a table function (absent days give no rows)."""
    columns = (*load_features(settings).event_columns, *SOURCE_COLUMNS)  # the repository's attributes too
    structure = ", ".join(f"`{c.name}` {c.clickhouse}" for c in columns) + ", late Bool"
    return f"file('{layout.days_parts(settings, days)}', JSONEachRow, '{structure}')"


def dead_letter_positions(settings: Settings) -> str:
    """Source positions of every dead letter: rule breaks (stream) and unparseable lines (parse)."""
    d = settings.dead_letter_dir
    return (
        f"SELECT src_part, src_off FROM file('{d}/stream/part-*', JSONEachRow, '{POSITION_STRUCTURE}') "
        f"UNION ALL SELECT src_part, src_off FROM file('{d}/parse/*.jsonl', JSONEachRow, '{POSITION_STRUCTURE}')"
    )


def rows(settings: Settings, f: Feature, side: str, day: date | None = None) -> str:
    """A relation over a feature's rows on one side ('stream' or 'batch'), hot or cold alike:
    those of `day` (windows and sessions starting on it, values updated on it, as_of = day), or all."""
    days = [day] if day else None
    if f.layer == "batch":
        return warehouse_rows(settings, f.name, days)
    if side == "batch":
        return warehouse_rows(settings, f"{f.name}_batch", days)
    hop = hop_of(f)
    if not hop:
        return warehouse_rows(settings, stream_table(f), days)
    if day is None:
        return f"({windows_from_tiles(f, hop, warehouse_rows(settings, stream_table(f)))})"
    # the windows starting on the day hold tiles of the day and up to a window's size after it
    tile_days = [day + timedelta(days=i) for i in range(1 + math.ceil(hop.size_s / 86400))]
    windows = windows_from_tiles(f, hop, warehouse_rows(settings, stream_table(f), tile_days))
    return f"(SELECT * FROM ({windows}) WHERE toDate(window_start) = '{day.isoformat()}')"


def window_span_s(f: Feature) -> int:
    """How far a row's newest time may trail the events behind it (window size or session gap)."""
    agg = f.aggregation
    if not isinstance(agg, WindowAggregate):
        return 0
    w = agg.window
    if isinstance(w, Tumble):
        return w.size_s
    if isinstance(w, Hop):
        return w.slide_s if agg.tiled else w.size_s  # tiles are slide-sized
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
