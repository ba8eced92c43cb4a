"""The views BI queries: sliding windows built from their tiles, and the serving view `<name>`
(batch rows for reconciled days, stream rows for the others; the newer row per user)."""

from __future__ import annotations

from common.settings import Settings
from features.definitions import Feature, Hop
from warehouse.rows import rows
from warehouse.tables import first_time_column, hop_of, replacing_version, stream_table


def windows_from_tiles(f: Feature, hop: Hop, tiles: str) -> str:
    """Sliding windows from tiles (`tiles`: a relation over their rows): a tile starting at t
    is in the windows starting at t - k*slide for k in 0..size/slide-1."""
    measures = [m.name for m in f.aggregation.measures]  # type: ignore[union-attr]
    keys = [c.name for c in f.columns if c.name not in ("window_start", "window_end", *measures)]
    inner = (
        f"SELECT {', '.join(keys)}, window_start - toIntervalSecond({hop.slide_s} * k) AS ws, {', '.join(measures)} "
        f"FROM {tiles} ARRAY JOIN range({hop.tiles_per_window}) AS k"
    )
    select = []
    for c in f.columns:
        if c.name == "window_start":
            select.append("ws AS window_start")
        elif c.name == "window_end":
            select.append(f"ws + toIntervalSecond({hop.size_s}) AS window_end")
        elif c.name in measures:
            select.append(f"toInt64(sum({c.name})) AS {c.name}")
        else:
            select.append(c.name)
    return f"SELECT {', '.join(select)} FROM ({inner}) GROUP BY {', '.join(keys)}, ws"


def tiles_view(settings: Settings, f: Feature, hop: Hop) -> str:
    """`<name>_stream`: the stream's sliding windows over its tiles, hot and cold."""
    windows = windows_from_tiles(f, hop, rows(settings, stream_table(f)))
    return f"CREATE OR REPLACE VIEW {settings.clickhouse.database}.{f.name}_stream AS {windows}"


def serving_view(settings: Settings, f: Feature) -> str:
    """`<name>`: batch rows for reconciled days and stream rows for the others; for a
    per-user value, the newer of the two (batch on a tie)."""
    db = settings.clickhouse.database
    cols = ", ".join(f"`{c.name}`" for c in f.columns)
    batch = rows(settings, f"{f.name}_batch")
    stream = f"{db}.{f.name}_stream" if hop_of(f) else rows(settings, stream_table(f))
    if f.updating:
        both = f"SELECT {cols}, 1 AS from_batch FROM {batch} UNION ALL SELECT {cols}, 0 AS from_batch FROM {stream}"
        return (
            f"CREATE OR REPLACE VIEW {db}.{f.name} AS SELECT {cols} FROM ({both}) "
            f"ORDER BY {replacing_version(f)} DESC, from_batch DESC LIMIT 1 BY {', '.join(f.keys)}"
        )
    reconciled = f"SELECT day FROM {db}.reconciled_days FINAL WHERE feature = '{f.name}'"
    day = f"toDate({first_time_column(f)})"
    return (
        f"CREATE OR REPLACE VIEW {db}.{f.name} AS SELECT {cols} FROM {batch} UNION ALL "
        f"SELECT {cols} FROM {stream} WHERE {day} NOT IN ({reconciled})"
    )
