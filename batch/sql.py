"""Compile the feature definitions in features/ into Spark SQL over a view `events`
(the archive: canonical columns, src_part, src_off, late). The batch includes late events.

`by` names extra leading group keys: a range of days is computed in one query, grouped by
its day column (`dt` for daily partials, `as_of` for values as of each day's end)."""

from __future__ import annotations

from features.definitions import (
    FLOATING_FNS,
    Column,
    DayMeasure,
    Feature,
    Hop,
    LastN,
    Latest,
    LatestStateSum,
    Measure,
    RollingStats,
    RollingTopN,
    Session,
    WindowAggregate,
    moment,
)


def _where(f: Feature) -> str:
    return f" WHERE {f.source_filter}" if f.source_filter else ""


def _ms(col: str) -> str:
    return f"timestamp_millis({col})"


def _combine(m: Measure) -> str:
    """How tiles' values of a measure make a window's: sums of counts, the max of maxima."""
    if m.additive:
        return "SUM"
    if m.fn == "max":
        return "MAX"
    raise ValueError(f"{m.name}: tiles need additive measures or max")


def _in_time_order(x: str, value: str) -> str:
    """x's event as a struct that sorts by time then source position (null when x is)."""
    ordered = f"named_struct('t', event_time, 'p', src_part, 'o', src_off, 'v', {value})"
    return f"CASE WHEN {x} IS NOT NULL THEN {ordered} END"


def measure_sql(m: Measure, out: Column) -> str:
    """A window measure in Spark SQL; `out` is its column."""
    x = m.arg
    if m.fn == "sum":
        return f"SUM({x})" if out.flink == "BIGINT" else f"CAST(SUM(CAST({x} AS {out.flink})) AS {out.flink})"
    if m.fn in ("first", "last"):
        return f"{'MIN' if m.fn == 'first' else 'MAX'}({_in_time_order(x, x)}).v"
    if m.fn in ("first_k", "last_k"):
        ascending = "true" if m.fn == "first_k" else "false"
        ordered = f"sort_array(collect_list({_in_time_order(x, f'CAST({x} AS STRING)')}), {ascending})"
        return f"transform(slice({ordered}, 1, {m.k}), _e -> _e.v)"
    if m.fn in ("top_k", "histogram"):
        # each distinct value with its count, most frequent first, ties by the value's text
        xs = f"collect_list(CAST({x} AS STRING))"
        counted = (
            f"transform(array_distinct({xs}), _v -> named_struct('n', -size(filter({xs}, _y -> _y = _v)), 'v', _v))"
        )
        top = f"slice(sort_array({counted}), 1, {m.k})"
        if m.fn == "top_k":
            return f"transform({top}, _e -> _e.v)"
        return f"map_from_entries(transform({top}, _e -> struct(_e.v, CAST(-_e.n AS BIGINT))))"
    return m.sql("ts")


def _measures(f: Feature, agg: WindowAggregate) -> str:
    cols = {c.name: c for c in f.columns}
    return ", ".join(f"{measure_sql(m, cols[m.name])} AS {m.name}" for m in agg.measures)


def _window_aggregate(f: Feature, agg: WindowAggregate) -> str:
    keys = list(f.keys)
    measures = _measures(f, agg)
    w = agg.window
    names = [c.name for c in f.columns]
    if isinstance(w, Session):
        # session_window keeps events exactly gap apart together, like Flink's SESSION
        inner = (
            f"SELECT {', '.join(keys)}, {measures} FROM events{_where(f)} "
            f"GROUP BY {', '.join(keys)}, session_window(ts, '{w.gap_s} seconds')"
        )
        return f"SELECT {', '.join(names)} FROM ({inner})"
    if isinstance(w, Hop) and agg.tiled:
        # 5-minute tiles first, then each tile into the size/slide windows containing it
        slide, size = w.slide_s * 1000, w.size_s * 1000
        tile_measures = ", ".join(f"{m.sql('ts')} AS {m.name}" for m in agg.measures)
        tiles = (
            f"SELECT {', '.join(keys)}, event_time - pmod(event_time, {slide}) AS tile, {tile_measures} "
            f"FROM events{_where(f)} GROUP BY {', '.join(keys)}, event_time - pmod(event_time, {slide})"
        )
        sums = ", ".join(f"CAST({_combine(m)}({m.name}) AS BIGINT) AS {m.name}" for m in agg.measures)
        windows = (
            f"SELECT {', '.join(keys)}, tile - k * {slide} AS ws, {sums} FROM ({tiles}) "
            f"LATERAL VIEW explode(sequence(0, {w.tiles_per_window - 1})) t AS k "
            f"GROUP BY {', '.join(keys)}, tile - k * {slide}"
        )
        cols = [
            f"{_ms('ws')} AS window_start"
            if c == "window_start"
            else f"{_ms(f'ws + {size}')} AS window_end"
            if c == "window_end"
            else c
            for c in names
        ]
        return f"SELECT {', '.join(cols)} FROM ({windows})"
    size = w.size_s * 1000
    start = f"event_time - pmod(event_time, {size})"
    events = f"events{_where(f)}"
    if isinstance(w, Hop):  # each event in the size/slide windows that hold it
        slide = w.slide_s * 1000
        start = f"event_time - pmod(event_time, {slide}) - _tile * {slide}"
        events = f"events LATERAL VIEW explode(sequence(0, {w.tiles_per_window - 1})) AS _tile{_where(f)}"
    inner = (
        f"SELECT {', '.join(keys + [''])}{start} AS ws, {measures} FROM {events} GROUP BY {', '.join(keys + [start])}"
    )
    cols = [
        f"{_ms('ws')} AS window_start"
        if c == "window_start"
        else f"{_ms(f'ws + {size}')} AS window_end"
        if c == "window_end"
        else "CAST(rn AS BIGINT) AS `rank`"
        if c == "rank"
        else c
        for c in names
    ]
    if agg.top_n:
        # row_number, not rank: ties at the 10th place occur in real windows
        order = ", ".join(agg.top_n.order_by)
        ranked = f"SELECT *, row_number() OVER (PARTITION BY ws ORDER BY {order}) AS rn FROM ({inner})"
        return f"SELECT {', '.join(cols)} FROM ({ranked}) WHERE rn <= {agg.top_n.n}"
    return f"SELECT {', '.join(cols)} FROM ({inner})"


def _keys(f: Feature, by: tuple[str, ...]) -> str:
    return ", ".join((*by, *f.keys))


def _latest_state_sum(f: Feature, agg: LatestStateSum, by: tuple[str, ...]) -> str:
    keys = _keys(f, by)
    value_col, time_col = f.columns[-2].name, f.columns[-1].name
    latest = (
        f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY {keys}, {agg.entity} "
        f"ORDER BY event_time DESC, src_part DESC, src_off DESC) AS rn FROM events{_where(f)}) WHERE rn = 1"
    )
    return (
        f"SELECT {keys}, CAST(SUM(CASE WHEN event_type = '{agg.member_type}' "
        f"THEN CAST(COALESCE({agg.value}, 0) AS DECIMAL(18, 2)) ELSE CAST(0 AS DECIMAL(18, 2)) END) "
        f"AS DECIMAL(18, 2)) AS {value_col}, {_ms('MAX(event_time)')} AS {time_col} FROM ({latest}) GROUP BY {keys}"
    )


def _last_n(f: Feature, agg: LastN, by: tuple[str, ...]) -> str:
    keys = _keys(f, by)
    list_col, time_col = f.columns[1].name, f.columns[2].name
    # collect_list loses order: sort the collected structs, newest first
    newest = f"slice(sort_array(collect_list(struct(event_time, src_part, src_off, {agg.value})), false), 1, {agg.n})"
    return (
        f"SELECT {keys}, transform(v, x -> x.{agg.value}) AS {list_col}, {_ms('v[0].event_time')} AS {time_col} "
        f"FROM (SELECT {keys}, {newest} AS v FROM events{_where(f)} GROUP BY {keys})"
    )


def _counted(f: Feature, agg: RollingTopN, table: str, by: tuple[str, ...] = ()) -> str:
    """Occurrences per (keys, value): from events, or summed from per-day partials."""
    keys, n = _keys(f, by), f.columns[-1].name
    what = f"SUM({n})" if table == "partials" else "COUNT(*)"
    where = "" if table == "partials" else _where(f)
    return f"SELECT {keys}, {agg.value}, {what} AS {n} FROM {table}{where} GROUP BY {keys}, {agg.value}"


def _top_n(f: Feature, agg: RollingTopN, as_of: str, counted: str, by: tuple[str, ...] = ()) -> str:
    keys, n = _keys(f, by), f.columns[-1].name
    ranked = (
        f"SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY {n} DESC, {agg.value} ASC) AS rn FROM ({counted})"
    )
    return (
        f"SELECT {as_of} AS as_of, {', '.join(f.keys)}, CAST(rn AS BIGINT) AS `rank`, {agg.value}, {n} "
        f"FROM ({ranked}) WHERE rn <= {agg.n}"
    )


def _cast(f: Feature, m: DayMeasure, sql: str) -> str:
    return f"CAST({sql} AS {next(c.flink for c in f.columns if c.name == m.name)})"


def _day_measure(f: Feature, m: DayMeasure, step: str) -> str:
    """A RollingStats measure over the events (`rescan`), per day (`partial`) or over the
    days' partials (`merge`): counts and sums add up, minima and maxima combine, distinct
    values are kept as sets and united, moments keep their exact sums, first and last their
    event's order (a struct)."""
    value = m.value
    out = next(c for c in f.columns if c.name == m.name)
    if m.fn == "sum" and out.flink.startswith("DECIMAL"):  # a DOUBLE's exact sum (features/schema.py)
        value = f"CAST({value} AS {out.flink})"
    if m.fn in ("min", "max"):
        return f"{m.fn.upper()}({m.name if step == 'merge' else value})"
    if m.fn in ("first", "last"):
        ordered = m.name if step == "merge" else _in_time_order(value, value)
        return f"{'MIN' if m.fn == 'first' else 'MAX'}({ordered})" + ("" if step == "partial" else ".v")
    if m.fn in FLOATING_FNS:
        x = f"CAST({value} AS DECIMAL(18, 6))"
        sums = {"n": f"COUNT({x})", "s": f"SUM({x})", "q": f"SUM({x} * {x})"}
        if step == "partial":
            fields = ", ".join(f"'{k}', {v}" for k, v in sums.items())
            return f"named_struct({fields})"
        if step == "merge":
            sums = {k: f"SUM({m.name}.{k})" for k in sums}
        return moment(m.fn, *sums.values())
    if m.fn == "count_distinct":
        return {
            "rescan": f"COUNT(DISTINCT {value})",
            "partial": f"collect_set({value})",
            "merge": f"size(array_distinct(flatten(collect_list({m.name}))))",
        }[step]
    return {"rescan": f"COALESCE(SUM({value}), 0)", "partial": f"SUM({value})", "merge": f"COALESCE(SUM({m.name}), 0)"}[
        step
    ]


def _rolling(f: Feature, as_of: str) -> str:
    """Full rescan over the view `events`, already limited to the day range ending on as_of."""
    keys = ", ".join(f.keys)
    agg = f.aggregation
    if isinstance(agg, RollingTopN):
        return _top_n(f, agg, f"DATE'{as_of}'", _counted(f, agg, "events"))
    assert isinstance(agg, RollingStats)
    measures = ", ".join(_cast(f, m, _day_measure(f, m, "rescan")) + f" AS {m.name}" for m in agg.measures)
    return f"SELECT DATE'{as_of}' AS as_of, {keys}, {measures} FROM events{_where(f)} GROUP BY {keys}"


def partial_sql(f: Feature, by: tuple[str, ...] = ("dt",)) -> str:
    """Daily partial aggregates of a 30-day feature over the view `events` (with its day
    `dt`): counts per value for a top-n; sums, and sets of the distinct values, for stats."""
    keys = _keys(f, by)
    agg = f.aggregation
    if isinstance(agg, RollingTopN):
        return _counted(f, agg, "events", by)
    assert isinstance(agg, RollingStats), f"{f.name} has no daily partials"
    parts = ", ".join(f"{_day_measure(f, m, 'partial')} AS {m.name}" for m in agg.measures)
    return f"SELECT {keys}, {parts} FROM events{_where(f)} GROUP BY {keys}"


def merge_sql(f: Feature) -> str:
    """The feature as of each day from the view `partials` (its days' partials, each
    repeated with every `as_of` day covering it): the union of the partials per as_of."""
    by = ("as_of",)
    keys = _keys(f, by)
    agg = f.aggregation
    if isinstance(agg, RollingTopN):
        return _top_n(f, agg, "as_of", _counted(f, agg, "partials", by), by)
    assert isinstance(agg, RollingStats), f"{f.name} has no daily partials"
    measures = ", ".join(_cast(f, m, _day_measure(f, m, "merge")) + f" AS {m.name}" for m in agg.measures)
    return f"SELECT {keys}, {measures} FROM partials GROUP BY {keys}"


def spread_sql(view: str, day_col: str, days: int, first: str, last: str) -> str:
    """Each row of `view` once for every as_of day in first..last whose `days`-day span
    (as_of-days+1..as_of) holds the row's day: how one query serves a range of as_of days."""
    return (
        f"SELECT * FROM (SELECT *, date_add({day_col}, _day) AS as_of FROM {view} "
        f"LATERAL VIEW explode(sequence(0, {days - 1})) AS _day) "
        f"WHERE as_of BETWEEN DATE'{first}' AND DATE'{last}'"
    )


def spark_sql(f: Feature, as_of: str | None = None, by: tuple[str, ...] = ()) -> str:
    """The Spark SQL computing feature f over the view `events`; per-user state is grouped
    by `by` too (as_of, for the state as of each day's end)."""
    agg = f.aggregation
    if isinstance(agg, WindowAggregate):
        return _window_aggregate(f, agg)
    if isinstance(agg, LatestStateSum):
        return _latest_state_sum(f, agg, by)
    if isinstance(agg, LastN):
        return _last_n(f, agg, by)
    if isinstance(agg, RollingTopN | RollingStats):
        assert as_of, f"{f.name} is computed as of a day"
        return _rolling(f, as_of)
    if isinstance(agg, Latest):
        keys = _keys(f, by)
        return f"SELECT {keys}, {_ms('MAX(event_time)')} AS {f.columns[-1].name} FROM events GROUP BY {keys}"
    raise TypeError(agg)  # pragma: no cover


def reduce_sql(f: Feature) -> str:
    """The events of each day (`dt`) of the view `events` that can still decide a per-user
    state feature (the newest per key, or the n newest): its query gives the same result over
    the union of each day's reduced events as over all of them, so a day is reduced once for
    the 7 as-of days it counts in."""
    agg = f.aggregation
    assert isinstance(agg, LatestStateSum | LastN | Latest), f"{f.name} is not per-user state"
    part = ", ".join(("dt", *f.keys, agg.entity) if isinstance(agg, LatestStateSum) else ("dt", *f.keys))
    n = agg.n if isinstance(agg, LastN) else 1
    return (
        f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY {part} "
        f"ORDER BY event_time DESC, src_part DESC, src_off DESC) AS _rn FROM events{_where(f)}) WHERE _rn <= {n}"
    )
