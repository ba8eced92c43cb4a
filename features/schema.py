"""A feature's output columns, derived from its keys, window and measures with the types of
the event columns they read (docs/features.md lists each measure's result type).

The order: the user key first (the key features are joined on), then the window bounds, the
rank of a top-n, the other keys, and the measures; batch features start with their day
`as_of`. A key is nullable like the event column it reads, unless the feature's filter is a
conjunction requiring `<key> IS NOT NULL`."""

from __future__ import annotations

import re

from features.catalog import ENRICHED_COLUMNS
from features.definitions import (
    BY_TIME_FNS,
    COUNTED_FNS,
    FLOATING_FNS,
    LIST_FNS,
    NUMERIC_FNS,
    ORDERED_FNS,
    WINDOW_COLUMNS,
    Column,
    DayMeasure,
    Feature,
    LastN,
    Latest,
    LatestStateSum,
    Measure,
    RollingStats,
    RollingTopN,
    Session,
    WindowAggregate,
    bigint,
    counts,
    day,
    decimal,
    double,
    money,
    rank,
    strings,
    timestamp,
)
from features.events import EVENT_COLUMNS

USER_KEY = "user_id"
READS_ATTRIBUTE = (*NUMERIC_FNS, *ORDERED_FNS, *BY_TIME_FNS, *COUNTED_FNS)
# the exact sum of DOUBLE values: each rounded to 6 decimals (half up), added as decimals
EXACT_SUM = (38, 6)


class DerivedColumns(tuple):
    """Columns derived from a definition (not given by its author), with the repository's
    attributes they were derived with: a copy of the feature with another definition
    (`dataclasses.replace`) derives them again."""

    attributes: dict[str, Column] = {}


def nullable(c: Column) -> Column:
    if c.clickhouse.startswith(("Nullable(", "Array(", "Map(")):
        return c
    return Column(c.name, c.flink, f"Nullable({c.clickhouse})")


def not_null(c: Column) -> Column:
    inner = re.fullmatch(r"Nullable\((.*)\)", c.clickhouse)
    return Column(c.name, c.flink, inner.group(1)) if inner else c


def _required(f: Feature, name: str) -> bool:
    """Does the feature's filter keep only events where `name` is not null?"""
    flt = f.source_filter or ""
    if re.search(r"\bOR\b|\bNOT\s*\(", flt, re.IGNORECASE):
        return False
    return any(
        re.fullmatch(rf"\(*\s*`?{re.escape(name)}`?\s+IS\s+NOT\s+NULL\s*\)*", part.strip(), re.IGNORECASE)
        for part in re.split(r"\bAND\b", flt, flags=re.IGNORECASE)
    )


def _renamed(c: Column, name: str) -> Column:
    return Column(name, c.flink, c.clickhouse)


def measure_column(m: Measure, arg: Column | None) -> Column | None:
    """The column a window measure gives, from the column it reads (`arg`; None: it reads
    none); None for a measure that does not exist."""
    fn = m.fn
    if fn in ("count", "count_distinct", "count_if"):
        return bigint(m.name)
    if fn in ("min_time", "max_time"):
        return timestamp(m.name)
    if fn == "sum_money":
        return money(m.name)
    if fn in LIST_FNS:
        return counts(m.name) if fn == "histogram" else strings(m.name)
    if fn in FLOATING_FNS:
        return double(m.name)
    if arg is None:
        return None
    if fn == "sum":
        return nullable(bigint(m.name)) if arg.flink == "BIGINT" else nullable(decimal(m.name, *EXACT_SUM))
    return nullable(_renamed(arg, m.name)) if fn in (*ORDERED_FNS, *BY_TIME_FNS) else None


def _day_column(m: DayMeasure, arg: Column | None) -> Column:
    if m.fn == "sum_money":
        return money(m.name)
    if m.fn == "sum" and arg is not None:
        return bigint(m.name) if arg.flink == "BIGINT" else decimal(m.name, *EXACT_SUM)
    if m.fn in FLOATING_FNS:
        return double(m.name)
    if m.fn in (*ORDERED_FNS, "first", "last") and arg is not None:
        return nullable(_renamed(arg, m.name))
    return bigint(m.name)


def event_types(attributes: dict[str, Column]) -> dict[str, Column]:
    """Every column a feature may read: the canonical event's, the catalogue's, the repository's."""
    return {c.name: c for c in (*EVENT_COLUMNS, *ENRICHED_COLUMNS)} | attributes


def derived_columns(f: Feature, attributes: dict[str, Column]) -> DerivedColumns:
    """The feature's output columns; empty when it reads a column that is not known (the
    repository's checks name it)."""
    known = event_types(attributes)

    def col(name: str) -> Column | None:
        c = known.get(name)
        return None if c is None else (not_null(c) if _required(f, name) else c)

    keys = [col(k) for k in f.keys]
    if any(k is None for k in keys):
        return _none(attributes)
    user = [k for k in keys if k and k.name == USER_KEY]
    others = [k for k in keys if k and k.name != USER_KEY]
    agg = f.aggregation
    out: list[Column | None]
    if isinstance(agg, WindowAggregate):
        bounds = [] if isinstance(agg.window, Session) else list(WINDOW_COLUMNS)
        ranks = [rank()] if agg.top_n else []
        if any(_reads(m) and m.arg not in known for m in agg.measures):
            return _none(attributes)
        values = [measure_column(m, known[m.arg] if _reads(m) else None) for m in agg.measures]
        if None in values:
            return _none(attributes)
        out = [*user, *bounds, *ranks, *others, *values]
    elif isinstance(agg, LatestStateSum):
        out = [*user, *others, money(f.name), timestamp("updated_at")]
    elif isinstance(agg, LastN):
        out = [*user, *others, strings(agg.column or f.name), timestamp("updated_at")]
    elif isinstance(agg, Latest):
        out = [*user, *others, timestamp(f.name)]
    elif isinstance(agg, RollingTopN):
        value = col(agg.value)
        if value is None:
            return _none(attributes)
        out = [day("as_of"), *user, *others, rank(), value, bigint(agg.count)]
    elif isinstance(agg, RollingStats):
        out = [day("as_of"), *user, *others, *(_day_column(m, known.get(m.arg)) for m in agg.measures)]
    else:
        out = []
    columns = DerivedColumns(c for c in out if c is not None)
    columns.attributes = attributes
    return columns


def _none(attributes: dict[str, Column]) -> DerivedColumns:
    columns = DerivedColumns()
    columns.attributes = attributes
    return columns


def _reads(m: Measure) -> bool:
    """Does the measure read one event column (its `arg`), whose type it needs?"""
    return m.fn in READS_ATTRIBUTE
