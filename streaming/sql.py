"""Compile the feature definitions in features/ into Flink SQL.

The job registers a view `events` (accepted events, rowtime `ts`, BIGINT `event_time`,
boolean `late`) and the versioned table `catalog_items`; each feature becomes one SELECT over
its input view: its events, joined with the item catalogue as of each event's time when it is
enriched. Windowed features read only on-time events (late ones are counted and archived, and
the batch layer includes them); per-user state features read every accepted event.
"""

from __future__ import annotations

from dataclasses import dataclass

from features.catalog import CATALOG_PREFIX, ITEM_COLUMNS, ITEM_KEY
from features.definitions import (
    Feature,
    Hop,
    LastN,
    Latest,
    LatestStateSum,
    Measure,
    Session,
    Tumble,
    WindowAggregate,
)
from features.events import Column


@dataclass(frozen=True)
class FlinkQuery:
    """What the stream job writes for one feature: an output table and its SELECT."""

    feature: Feature
    output: str  # topic / table suffix, e.g. "uv_1m" or "category_clicks_1h_tiles"
    columns: tuple[Column, ...]
    select: str
    updating: bool
    functions: tuple[str, ...] = ()  # the DDL of the functions of jvm/ the select calls, run before it


def _interval(seconds: int) -> str:
    return f"INTERVAL '{seconds}' SECOND(9)"


def catalog_join(events: str) -> str:
    """These events (a SELECT), each with the item's catalogue attributes as of its event time
    (null when the catalogue does not know the item then), and `catalog_known`."""
    attrs = [c.name for c in ITEM_COLUMNS if c.name not in (ITEM_KEY, "updated_at")]
    cols = ", ".join(f"c.`{name}` AS `{CATALOG_PREFIX}{name}`" for name in attrs)
    return (
        f"SELECT e.*, {cols}, c.`{ITEM_KEY}` IS NOT NULL AS catalog_known FROM ({events}) AS e "
        f"LEFT JOIN catalog_items FOR SYSTEM_TIME AS OF e.ts AS c ON e.`{ITEM_KEY}` = c.`{ITEM_KEY}`"
    )


def _input_view(f: Feature) -> str:
    base = "events_on_time" if f.windowed else "events"
    where = f" WHERE {f.source_filter}" if f.source_filter else ""
    events = f"SELECT * FROM {base}{where}"
    # the filter (on event columns only) before the join: the join holds and looks up only
    # this feature's events
    return catalog_join(events) if f.enriched else events


# an event's place in time order as text that sorts like it: event time, then source position
# (44 digits), before the value it carries
SEP_VALUE, SEP_ITEM = "U&'\\0002'", "U&'\\0001'"  # after a sort prefix; between list items
SORTABLE = (
    "LPAD(CAST(event_time AS STRING), 15, '0') || LPAD(CAST(src_part AS STRING), 10, '0') || "
    f"LPAD(CAST(src_off AS STRING), 19, '0') || {SEP_VALUE} || "
)
PREFIX = f"'[0-9]{{44}}' || {SEP_VALUE}"
# measures computed by an aggregate function of our own (jvm/): its SQL name and Java class;
# one value -> count map per window, which merges like the windows do (sessions, hop slices)
FUNCTIONS = {
    "top_k": ("LF_TOP_K", "io.lambdafeatures.flink.TopK"),
    "histogram": ("LF_HISTOGRAM", "io.lambdafeatures.flink.Histogram"),
}


def function_ddl(fn: str) -> str:
    """Registers the function of a measure (once per job: IF NOT EXISTS)."""
    name, cls = FUNCTIONS[fn]
    return f"CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS {name} AS '{cls}' LANGUAGE JAVA"


def measure_sql(m: Measure, out: Column) -> str:
    """A window measure in Flink SQL; `out` is its column."""
    x = m.arg
    if m.fn == "sum":
        return f"SUM({x})" if out.flink == "BIGINT" else f"SUM(CAST({x} AS {out.flink}))"
    if m.fn in ("first", "last"):
        # the value of the earliest (latest) event by time then source position
        pick = f"SUBSTRING({'MIN' if m.fn == 'first' else 'MAX'}({SORTABLE}CAST({x} AS STRING)) FROM 46)"
        return pick if out.flink == "STRING" else f"CAST({pick} AS {out.flink})"
    if m.fn in ("first_k", "last_k"):
        collected = f"ARRAY_AGG({SORTABLE}CAST({x} AS STRING)) FILTER (WHERE {x} IS NOT NULL)"
        ordered = f"ARRAY_SLICE(ARRAY_SORT({collected}, {'TRUE' if m.fn == 'first_k' else 'FALSE'}), 1, {m.k})"
        return f"SPLIT(REGEXP_REPLACE(ARRAY_JOIN({ordered}, {SEP_ITEM}), {PREFIX}, ''), {SEP_ITEM})"
    if m.fn in FUNCTIONS:
        return f"{FUNCTIONS[m.fn][0]}(CAST({x} AS STRING), {m.k})"
    return m.sql("ts")


def _measures(f: Feature, agg: WindowAggregate) -> str:
    cols = {c.name: c for c in f.columns}
    return ", ".join(f"{measure_sql(m, cols[m.name])} AS {m.name}" for m in agg.measures)


def _window_aggregate(f: Feature, agg: WindowAggregate, view: str) -> FlinkQuery:
    keys = list(f.keys)
    w = agg.window
    if isinstance(w, Session):
        tvf = f"SESSION(TABLE {view} PARTITION BY {', '.join(keys)}, DESCRIPTOR(ts), {_interval(w.gap_s)})"
    elif isinstance(w, Hop) and not agg.tiled:
        tvf = f"HOP(TABLE {view}, DESCRIPTOR(ts), {_interval(w.slide_s)}, {_interval(w.size_s)})"
    elif isinstance(w, Hop):
        # Tiles: count once per slide-sized tumbling window; 1 h windows are sums of
        # 12 tiles, derived where the rows are read (ClickHouse view, batch explode).
        tvf = f"TUMBLE(TABLE {view}, DESCRIPTOR(ts), {_interval(w.slide_s)})"
    elif isinstance(w, Tumble):
        tvf = f"TUMBLE(TABLE {view}, DESCRIPTOR(ts), {_interval(w.size_s)})"
    else:  # pragma: no cover - exhaustive
        raise TypeError(w)
    group = ", ".join(["window_start", "window_end", *keys])
    measures = _measures(f, agg)
    inner = f"SELECT {', '.join(keys + [''])}window_start, window_end, {measures} FROM TABLE({tvf}) GROUP BY {group}"
    out_cols = [c.name for c in f.columns]
    if agg.top_n:  # a Tumble's (features/repository.py)
        order = ", ".join(agg.top_n.order_by)
        ranked = (
            f"SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY {order}) AS rn FROM ({inner})"
        )
        cols = ", ".join("rn AS `rank`" if c == "rank" else c for c in out_cols)
        select = f"SELECT {cols} FROM ({ranked}) WHERE rn <= {agg.top_n.n}"
    else:
        select = f"SELECT {', '.join(out_cols)} FROM ({inner})"
    output = f"{f.name}_tiles" if agg.tiled else f.name
    functions = tuple(function_ddl(fn) for fn in FUNCTIONS if any(m.fn == fn for m in agg.measures))
    return FlinkQuery(f, output, f.columns, select, updating=False, functions=functions)


def _latest_state_sum(f: Feature, agg: LatestStateSum, view: str) -> FlinkQuery:
    keys = ", ".join(f.keys)
    # Ordering on the time attribute alone keeps this an event-time deduplication
    # (the later arrival wins a tie); a second sort column would make it a Top-1
    # whose retractions the planner mishandles (FLINK-40368).
    latest = (
        f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys}, {agg.entity} ORDER BY ts DESC) AS rn "
        f"FROM {view}) WHERE rn = 1"
    )
    value_col, time_col = f.columns[-2].name, f.columns[-1].name
    select = (
        f"SELECT {keys}, SUM(CASE WHEN event_type = '{agg.member_type}' "
        f"THEN CAST(COALESCE({agg.value}, 0) AS DECIMAL(18, 2)) ELSE CAST(0 AS DECIMAL(18, 2)) END) AS {value_col}, "
        f"MAX(TO_TIMESTAMP_LTZ(event_time, 3)) AS {time_col} FROM ({latest}) GROUP BY {keys}"
    )
    return FlinkQuery(f, f.name, f.columns, select, updating=True)


def _last_n(f: Feature, agg: LastN, view: str) -> FlinkQuery:
    keys = ", ".join(f.keys)
    # A Top-N that does not output its rank emits only the new row and the evicted one;
    # its rows are then collected as sortable strings (time, source position, value),
    # sorted newest first, and the prefixes cut off: one update per event, all in SQL.
    top = (
        f"SELECT {keys}, {agg.value}, event_time, src_part, src_off FROM (SELECT *, ROW_NUMBER() OVER "
        f"(PARTITION BY {keys} ORDER BY ts DESC, src_part DESC, src_off DESC) AS rn FROM {view}) WHERE rn <= {agg.n}"
    )
    sortable = (
        "LPAD(CAST(event_time AS STRING), 15, '0') || LPAD(CAST(src_part AS STRING), 10, '0') || "
        f"LPAD(CAST(src_off AS STRING), 19, '0') || U&'\\0002' || {agg.value}"
    )
    newest_first = f"ARRAY_SORT(ARRAY_AGG({sortable}), FALSE)"
    joined = f"ARRAY_JOIN({newest_first}, U&'\\0001')"
    unprefixed = f"REGEXP_REPLACE({joined}, '[0-9]{{44}}' || U&'\\0002', '')"
    list_col, time_col = f.columns[1].name, f.columns[2].name
    # the newest time is the first element's prefix: no MAX over a retracting input,
    # which would keep every value in state
    select = (
        f"SELECT {keys}, SPLIT({unprefixed}, U&'\\0001') AS {list_col}, "
        f"TO_TIMESTAMP_LTZ(CAST(SUBSTRING({newest_first}[1], 1, 15) AS BIGINT), 3) AS {time_col} "
        f"FROM ({top}) GROUP BY {keys}"
    )
    return FlinkQuery(f, f.name, f.columns, select, updating=True)


def _latest(f: Feature, view: str) -> FlinkQuery:
    keys = ", ".join(f.keys)
    select = f"SELECT {keys}, TO_TIMESTAMP_LTZ(MAX(event_time), 3) AS {f.columns[-1].name} FROM {view} GROUP BY {keys}"
    return FlinkQuery(f, f.name, f.columns, select, updating=True)


def compile_feature(f: Feature) -> tuple[str, FlinkQuery]:
    """Return (the CREATE VIEW for the feature's input, its query)."""
    view = f"{f.name}_input"
    ddl = f"CREATE TEMPORARY VIEW {view} AS {_input_view(f)}"
    agg = f.aggregation
    if isinstance(agg, WindowAggregate):
        return ddl, _window_aggregate(f, agg, view)
    if isinstance(agg, LatestStateSum):
        return ddl, _latest_state_sum(f, agg, view)
    if isinstance(agg, LastN):
        return ddl, _last_n(f, agg, view)
    if isinstance(agg, Latest):
        return ddl, _latest(f, view)
    raise TypeError(agg)  # pragma: no cover
