"""The public API of feature repositories: the classes a feature is declared with (source
filter, keys, window and aggregation, output schema). docs/features.md documents them.

Streaming (streaming/sql.py) and batch (batch/sql.py) compile their queries from these
objects; nothing else holds feature logic. Windows are epoch-aligned, UTC, half-open [start, end).
The features themselves live in a repository (features/ecommerce.py is the shipped one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from features.events import CART_EVENT_TYPES, Column, EventAttribute  # noqa: F401 (re-exported)

# --- windows -----------------------------------------------------------------------


@dataclass(frozen=True)
class Tumble:
    size_s: int


@dataclass(frozen=True)
class Hop:
    """Sliding windows; when size is a multiple of slide they are built from slide-sized tiles."""

    size_s: int
    slide_s: int

    @property
    def tiles_per_window(self) -> int:
        return self.size_s // self.slide_s


@dataclass(frozen=True)
class Session:
    """Per-key sessions: a pause of more than gap_s seconds starts a new one."""

    gap_s: int


Window = Tumble | Hop | Session

# --- aggregations ------------------------------------------------------------------


# the measures of a window; docs/features.md lists each with its result type
MeasureFn = Literal[
    "count",
    "count_distinct",
    "count_if",
    "min_time",
    "max_time",
    "sum_money",
    "sum",
    "avg",
    "min",
    "max",
    "stddev",
    "variance",
    "first",
    "last",
    "first_k",
    "last_k",
    "top_k",
    "histogram",
]


def moment(fn: str, n: str, total: str, squares: str) -> str:
    """avg, variance or stddev from the count of the values, the exact decimal sum of the
    values (each rounded to 6 decimals) and of their squares, then one double division, so
    both engines, and partials merged over days, give the same bits (Flink's own
    STDDEV_POP/VAR_POP do not survive its compiled plans, either)."""
    mean = f"(CAST({total} AS DOUBLE) / {n})"
    var = f"GREATEST(CAST({squares} AS DOUBLE) / {n} - {mean} * {mean}, CAST(0 AS DOUBLE))"
    value = {"avg": mean, "variance": var, "stddev": f"SQRT({var})"}[fn]
    return f"CASE WHEN {n} > 0 THEN {value} END"


# the measures of a RollingStats, over days of daily partials (docs/features.md)
DayMeasureFn = Literal[
    "count", "sum", "sum_money", "count_distinct", "min", "max", "avg", "variance", "stddev", "first", "last"
]
# measures of an attribute's values (nulls skipped), by what they accept
NUMERIC_FNS = ("sum", "avg", "stddev", "variance")
ORDERED_FNS = ("min", "max")
BY_TIME_FNS = ("first", "last", "first_k", "last_k")
COUNTED_FNS = ("top_k", "histogram")
LIST_FNS = ("first_k", "last_k", "top_k", "histogram")
FLOATING_FNS = ("avg", "stddev", "variance")  # DOUBLE results of exact sums (Measure._moment)
ATTRIBUTE_FNS = ("count_distinct", "sum_money", *NUMERIC_FNS, *ORDERED_FNS, *BY_TIME_FNS, *COUNTED_FNS)


@dataclass(frozen=True, repr=False)
class Measure:
    """One output value of a window aggregation. `arg` is the event column it reads (a
    predicate for count_if, an amount for sum_money); `k` how many values first_k, last_k and
    top_k keep and how many entries a histogram keeps (the most frequent ones)."""

    name: str
    fn: MeasureFn
    arg: str = ""
    k: int = 0

    def __repr__(self) -> str:
        # without k when it is 0: the definitions fingerprinted before k existed keep their fingerprint
        k = f", k={self.k!r}" if self.k else ""
        return f"Measure(name={self.name!r}, fn={self.fn!r}, arg={self.arg!r}{k})"

    def sql(self, time_col: str) -> str:
        """The SQL of the measures Flink and Spark write alike (the others: each compiler)."""
        if self.fn in FLOATING_FNS:
            return self._moment()
        return {
            "count": "COUNT(*)",
            "count_distinct": f"COUNT(DISTINCT {self.arg})",
            "count_if": f"SUM(CASE WHEN {self.arg} THEN 1 ELSE 0 END)",
            "min_time": f"MIN({time_col})",
            "max_time": f"MAX({time_col})",
            "min": f"MIN({self.arg})",
            "max": f"MAX({self.arg})",
            "sum_money": f"CAST(SUM(CAST(COALESCE({self.arg}, 0) AS DECIMAL(18, 2))) AS DECIMAL(18, 2))",
        }[self.fn]

    def _moment(self) -> str:
        x = f"CAST({self.arg} AS DECIMAL(18, 6))"
        return moment(self.fn, f"COUNT({self.arg})", f"SUM({x})", f"SUM({x} * {x})")

    @property
    def additive(self) -> bool:
        """Can partial results (tiles) be summed into a larger window?"""
        return self.fn in ("count", "count_if")


@dataclass(frozen=True)
class WindowAggregate:
    """GROUP BY keys over a window; window bounds become window_start/window_end columns."""

    window: Window
    measures: tuple[Measure, ...]
    top_n: TopN | None = None

    @property
    def tiled(self) -> bool:
        """Does the stream build its sliding windows from slide-sized tiles (a Hop of counts)?
        Any other measure over a Hop runs Flink's HOP windows directly."""
        return isinstance(self.window, Hop) and all(m.additive for m in self.measures)


@dataclass(frozen=True)
class TopN:
    """Keep the first n rows of each window by order_by; the position goes to column `rank`."""

    n: int
    order_by: tuple[str, ...]  # SQL order items, e.g. ("clicks DESC", "item_id ASC")


@dataclass(frozen=True)
class LatestStateSum:
    """Per key and entity keep the latest event (ties: later in source order); sum `value`
    over the entities whose latest event has type `member_type` (a null value counts 0).
    Its column is named like the feature."""

    entity: str
    value: str
    member_type: str


@dataclass(frozen=True)
class LastN:
    """The n most recent values of a column, newest first (ties: later in source order), in
    the column `column` (default: the feature's name)."""

    value: str
    n: int
    column: str = field(default="", repr=False)  # fingerprinted in the feature's columns


@dataclass(frozen=True)
class Latest:
    """The latest event time per key, in a column named like the feature."""


@dataclass(frozen=True)
class RollingTopN:
    """Batch, per user as of day D over days D-days+1..D: the n most frequent values of a
    column among the filtered events, rank 1..n, ties by the value ascending; each value's
    occurrences in the column `count`."""

    value: str
    n: int
    days: int
    count: str = field(default="occurrences", repr=False)  # fingerprinted in the feature's columns


@dataclass(frozen=True)
class DayMeasure:
    """One measure of a RollingStats over the events matching `where`. Each splits into
    per-day partials: counts and sums add up, minima and maxima combine, distinct values are
    kept as sets and united, avg/variance/stddev keep the count, sum and sum of squares, and
    first/last keep their event's time and source position. All but count read `arg`."""

    name: str
    fn: DayMeasureFn
    arg: str = ""  # the attribute read, or the expression counted distinct
    where: str = ""  # SQL predicate; empty = every event

    @property
    def value(self) -> str:
        """The per-event value the aggregate reads (null when `where` does not hold)."""
        v = {"count": "1", "sum_money": f"CAST(COALESCE({self.arg}, 0) AS DECIMAL(18, 2))"}.get(self.fn, self.arg)
        return f"CASE WHEN {self.where} THEN {v} END" if self.where else v


@dataclass(frozen=True)
class RollingStats:
    """Batch, per user as of day D over days D-days+1..D: one row of measures."""

    measures: tuple[DayMeasure, ...]
    days: int


Aggregation = WindowAggregate | LatestStateSum | LastN | Latest | RollingTopN | RollingStats


@dataclass(frozen=True)
class Feature:
    """A feature: which events, grouped by which keys, aggregated how. Its output columns
    follow from the keys, the window and the measures (features/schema.py); `columns`
    overrides them."""

    name: str
    description: str
    keys: tuple[str, ...]
    aggregation: Aggregation
    columns: tuple[Column, ...] = ()  # output schema in ClickHouse order; () = derived
    source_filter: str | None = None  # SQL predicate on canonical events
    layer: Literal["stream", "batch"] = "stream"
    online_column: str | None = None  # column kept in the per-user Redis hash, under the feature's name
    order_key: tuple[str, ...] = field(default=())  # ClickHouse ORDER BY (the row identity)
    # reads the events joined with the item catalogue as of each event's time, which adds the
    # columns catalog_category_id, catalog_brand, catalog_price, catalog_title (features/catalog.py)
    enriched: bool = False

    def __post_init__(self) -> None:
        from features.schema import DerivedColumns, derived_columns

        if not self.columns or isinstance(self.columns, DerivedColumns):
            # with the repository's attributes they were derived with (read_repository adds them)
            object.__setattr__(self, "columns", derived_columns(self, getattr(self.columns, "attributes", {})))

    @property
    def windowed(self) -> bool:
        return isinstance(self.aggregation, WindowAggregate)

    @property
    def updating(self) -> bool:
        """Does the stream emit updates (one current value per key) rather than final rows?"""
        return not self.windowed

    @property
    def time_column(self) -> str:
        """What dates a per-key value: its as-of day (batch), or the last column, the latest
        event time behind it (updating stream features)."""
        return "as_of" if self.layer == "batch" else self.columns[-1].name


# --- column helpers, for `columns=` overrides -----------------------------------------


def timestamp(name: str) -> Column:
    """A time column: epoch-aligned UTC milliseconds in both engines and ClickHouse."""
    return Column(name, "TIMESTAMP_LTZ(3)", "DateTime64(3, 'UTC')")


def bigint(name: str, nullable: bool = False) -> Column:
    """A 64-bit integer column."""
    return Column(name, "BIGINT", "Nullable(Int64)" if nullable else "Int64")


def double(name: str, nullable: bool = True) -> Column:
    """A 64-bit floating-point column."""
    return Column(name, "DOUBLE", "Nullable(Float64)" if nullable else "Float64")


def string(name: str, nullable: bool = True) -> Column:
    """A text column."""
    return Column(name, "STRING", "Nullable(String)" if nullable else "String")


def boolean(name: str, nullable: bool = True) -> Column:
    """A true/false column."""
    return Column(name, "BOOLEAN", "Nullable(Bool)" if nullable else "Bool")


def money(name: str) -> Column:
    """An amount of money: exact, two decimals (what sum_money gives)."""
    return Column(name, "DECIMAL(18, 2)", "Decimal(18, 2)")


def decimal(name: str, precision: int, scale: int) -> Column:
    """An exact decimal column."""
    return Column(name, f"DECIMAL({precision}, {scale})", f"Decimal({precision}, {scale})")


def strings(name: str) -> Column:
    """A list of texts (ClickHouse stores an empty list for none)."""
    return Column(name, "ARRAY<STRING>", "Array(String)")


def counts(name: str) -> Column:
    """A map of text to count (a histogram)."""
    return Column(name, "MAP<STRING, BIGINT>", "Map(String, Int64)")


def day(name: str) -> Column:
    """A calendar day."""
    return Column(name, "DATE", "Date")


def rank(name: str = "rank") -> Column:
    """A position in a top-n list, from 1."""
    return Column(name, "BIGINT", "UInt8")


WINDOW_COLUMNS = (timestamp("window_start"), timestamp("window_end"))
