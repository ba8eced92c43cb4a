"""Every feature, declared once: source filter, keys, window and aggregation, output schema.

Streaming (streaming/sql.py) and batch compile their queries from these objects; nothing
else holds feature logic. Windows are epoch-aligned, UTC, half-open [start, end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from features.events import CART_EVENT_TYPES, Column

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


@dataclass(frozen=True)
class Measure:
    """One output value of a window aggregation, in SQL that Flink and Spark both accept."""

    name: str
    fn: Literal["count", "count_distinct", "count_if", "min_time", "max_time", "max", "sum_money"]
    arg: str = ""  # a column, a predicate for count_if, an amount for sum_money

    def sql(self, time_col: str) -> str:
        return {
            "count": "COUNT(*)",
            "count_distinct": f"COUNT(DISTINCT {self.arg})",
            "count_if": f"SUM(CASE WHEN {self.arg} THEN 1 ELSE 0 END)",
            "min_time": f"MIN({time_col})",
            "max_time": f"MAX({time_col})",
            "max": f"MAX({self.arg})",
            "sum_money": f"CAST(SUM(CAST(COALESCE({self.arg}, 0) AS DECIMAL(18, 2))) AS DECIMAL(18, 2))",
        }[self.fn]

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


@dataclass(frozen=True)
class TopN:
    """Keep the first n rows of each window by order_by; the position goes to column `rank`."""

    n: int
    order_by: tuple[str, ...]  # SQL order items, e.g. ("clicks DESC", "item_id ASC")


@dataclass(frozen=True)
class LatestStateSum:
    """Per key and entity keep the latest event (ties: later in source order); sum `value`
    over the entities whose latest event has type `member_type` (a null value counts 0)."""

    entity: str
    value: str
    member_type: str


@dataclass(frozen=True)
class LastN:
    """The n most recent values of a column, newest first (ties: later in source order)."""

    value: str
    n: int


@dataclass(frozen=True)
class Latest:
    """The latest event time per key."""


@dataclass(frozen=True)
class RollingTopN:
    """Batch, per user as of day D over days D-days+1..D: the n most frequent values of a
    column among the filtered events, rank 1..n, ties by the value ascending."""

    value: str
    n: int
    days: int


@dataclass(frozen=True)
class DayMeasure:
    """One measure of a RollingStats over the events matching `where`. Each splits into
    per-day partials: counts and sums add up, distinct values are kept as sets and united."""

    name: str
    fn: Literal["count", "sum", "count_distinct"]
    arg: str = ""  # the summed value, or the expression counted distinct
    where: str = ""  # SQL predicate; empty = every event

    @property
    def value(self) -> str:
        """The per-event value the aggregate reads (null when `where` does not hold)."""
        v = {"count": "1", "sum": self.arg, "count_distinct": self.arg}[self.fn]
        return f"CASE WHEN {self.where} THEN {v} END" if self.where else v


@dataclass(frozen=True)
class RollingStats:
    """Batch, per user as of day D over days D-days+1..D: one row of measures."""

    measures: tuple[DayMeasure, ...]
    days: int


Aggregation = WindowAggregate | LatestStateSum | LastN | Latest | RollingTopN | RollingStats


@dataclass(frozen=True)
class Feature:
    """A feature: which events, grouped by which keys, aggregated how, with which output."""

    name: str
    description: str
    keys: tuple[str, ...]
    aggregation: Aggregation
    columns: tuple[Column, ...]  # output schema, in ClickHouse order
    source_filter: str | None = None  # SQL predicate on canonical events
    layer: Literal["stream", "batch"] = "stream"
    online_column: str | None = None  # column kept in the per-user Redis hash, under the feature's name
    order_key: tuple[str, ...] = field(default=())  # ClickHouse ORDER BY (the row identity)
    # reads the events joined with the item catalogue as of each event's time, which adds the
    # columns catalog_category_id, catalog_brand, catalog_price, catalog_title (features/catalog.py)
    enriched: bool = False

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


def _ts(name: str) -> Column:
    return Column(name, "TIMESTAMP_LTZ(3)", "DateTime64(3, 'UTC')")


def _i64(name: str, nullable: bool = False) -> Column:
    return Column(name, "BIGINT", "Nullable(Int64)" if nullable else "Int64")


WINDOW_COLUMNS = (_ts("window_start"), _ts("window_end"))

CART_AMOUNT = Feature(
    name="cart_amount",
    description="Sum of price over the items currently in the user's cart.",
    keys=("user_id",),
    source_filter="event_type IN (" + ", ".join(f"'{t}'" for t in CART_EVENT_TYPES) + ")",
    aggregation=LatestStateSum(entity="item_id", value="price", member_type="cart"),
    columns=(_i64("user_id"), Column("cart_amount", "DECIMAL(18, 2)", "Decimal(18, 2)"), _ts("updated_at")),
    online_column="cart_amount",
    order_key=("user_id",),
)
CATEGORY_CLICKS_1H = Feature(
    name="category_clicks_1h",
    description="Clicks per category in sliding 1 h windows every 5 min.",
    keys=("user_id", "category_id"),
    source_filter="event_type = 'click'",
    aggregation=WindowAggregate(Hop(size_s=3600, slide_s=300), (Measure("clicks", "count"),)),
    columns=(_i64("user_id"), *WINDOW_COLUMNS, _i64("category_id", nullable=True), _i64("clicks")),
    order_key=("user_id", "window_start", "category_id"),
)
UV_1M = Feature(
    name="uv_1m",
    description="Distinct users and events per tumbling minute.",
    keys=(),
    aggregation=WindowAggregate(Tumble(60), (Measure("uv", "count_distinct", "user_id"), Measure("events", "count"))),
    columns=(*WINDOW_COLUMNS, _i64("uv"), _i64("events")),
    order_key=("window_start",),
)
USER_SESSIONS = Feature(
    name="user_sessions",
    description="Sessions with a 5 min gap: bounds and counts of events, clicks, carts, purchases.",
    keys=("user_id",),
    aggregation=WindowAggregate(
        Session(gap_s=300),
        (
            Measure("session_start", "min_time"),
            Measure("session_end", "max_time"),
            Measure("events", "count"),
            Measure("clicks", "count_if", "event_type = 'click'"),
            Measure("carts", "count_if", "event_type = 'cart'"),
            Measure("purchases", "count_if", "event_type = 'purchase'"),
        ),
    ),
    columns=(
        _i64("user_id"),
        _ts("session_start"),
        _ts("session_end"),
        _i64("events"),
        _i64("clicks"),
        _i64("carts"),
        _i64("purchases"),
    ),
    order_key=("user_id", "session_start"),
)
LAST_SEARCHES = Feature(
    name="last_searches",
    description="The 10 most recent search queries, newest first.",
    keys=("user_id",),
    source_filter="event_type = 'search' AND query IS NOT NULL",
    aggregation=LastN(value="query", n=10),
    columns=(_i64("user_id"), Column("queries", "ARRAY<STRING>", "Array(String)"), _ts("updated_at")),
    online_column="queries",
    order_key=("user_id",),
)
HOT_ITEMS_5M = Feature(
    name="hot_items_5m",
    description="The 10 most clicked items per tumbling 5 min, ties by smaller item_id.",
    keys=("item_id",),
    source_filter="event_type = 'click' AND item_id IS NOT NULL",
    aggregation=WindowAggregate(
        Tumble(300), (Measure("clicks", "count"),), top_n=TopN(10, ("clicks DESC", "item_id ASC"))
    ),
    columns=(*WINDOW_COLUMNS, Column("rank", "BIGINT", "UInt8"), _i64("item_id"), _i64("clicks")),
    order_key=("window_start", "rank"),
)
LAST_EVENT_TIME = Feature(
    name="last_event_time",
    description="Latest event time of any event.",
    keys=("user_id",),
    aggregation=Latest(),
    columns=(_i64("user_id"), _ts("last_event_time")),
    online_column="last_event_time",
    order_key=("user_id",),
)

# On catalogue attributes, as the catalogue knew the item at the event's time; events of items it
# does not know count under a null key.
BRAND_CLICKS_1H = Feature(
    name="brand_clicks_1h",
    description="Clicks per catalogue brand per tumbling hour (null: items the catalogue does not know).",
    keys=("catalog_brand",),
    source_filter="event_type = 'click' AND item_id IS NOT NULL",
    aggregation=WindowAggregate(Tumble(3600), (Measure("clicks", "count"),)),
    columns=(*WINDOW_COLUMNS, Column("catalog_brand", "STRING", "Nullable(String)"), _i64("clicks")),
    order_key=("window_start", "catalog_brand"),
    enriched=True,
)
CATEGORY_PURCHASES_1H = Feature(
    name="category_purchases_1h",
    description="Purchases and their value at catalogue price per catalogue category per tumbling hour.",
    keys=("catalog_category_id",),
    source_filter="event_type = 'purchase' AND item_id IS NOT NULL",
    aggregation=WindowAggregate(
        Tumble(3600), (Measure("purchases", "count"), Measure("purchase_value", "sum_money", "catalog_price"))
    ),
    columns=(
        *WINDOW_COLUMNS,
        _i64("catalog_category_id", nullable=True),
        _i64("purchases"),
        Column("purchase_value", "DECIMAL(18, 2)", "Decimal(18, 2)"),
    ),
    order_key=("window_start", "catalog_category_id"),
    enriched=True,
)

STREAM_FEATURES: tuple[Feature, ...] = (
    CART_AMOUNT,
    CATEGORY_CLICKS_1H,
    UV_1M,
    USER_SESSIONS,
    LAST_SEARCHES,
    HOT_ITEMS_5M,
    LAST_EVENT_TIME,
    BRAND_CLICKS_1H,
    CATEGORY_PURCHASES_1H,
)
_MONEY = "CAST(COALESCE(price, 0) AS DECIMAL(18, 2))"
_PURCHASE = "event_type = 'purchase'"
TOP_BRANDS_30D = Feature(
    name="top_brands_30d",
    description="The 3 brands with most purchases over the last 30 days, ties by brand name.",
    keys=("user_id",),
    source_filter="event_type = 'purchase' AND brand IS NOT NULL",
    aggregation=RollingTopN(value="brand", n=3, days=30),
    columns=(
        Column("as_of", "DATE", "Date"),
        _i64("user_id"),
        Column("rank", "BIGINT", "UInt8"),
        Column("brand", "STRING", "String"),
        _i64("purchases"),
    ),
    layer="batch",
    online_column="brand",
    order_key=("as_of", "user_id", "rank"),
)
PURCHASE_STATS_30D = Feature(
    name="purchase_stats_30d",
    description="Purchases, GMV, distinct items bought and active days over the last 30 days.",
    keys=("user_id",),
    aggregation=RollingStats(
        measures=(
            DayMeasure("purchases", "count", where=_PURCHASE),
            DayMeasure("gmv", "sum", _MONEY, where=_PURCHASE),
            DayMeasure("distinct_items", "count_distinct", "item_id", where=_PURCHASE),
            DayMeasure("active_days", "count_distinct", "to_date(ts)"),
        ),
        days=30,
    ),
    columns=(
        Column("as_of", "DATE", "Date"),
        _i64("user_id"),
        _i64("purchases"),
        Column("gmv", "DECIMAL(18, 2)", "Decimal(18, 2)"),
        _i64("distinct_items"),
        _i64("active_days"),
    ),
    layer="batch",
    online_column="purchases",
    order_key=("as_of", "user_id"),
)
BATCH_FEATURES: tuple[Feature, ...] = (TOP_BRANDS_30D, PURCHASE_STATS_30D)
FEATURES: tuple[Feature, ...] = STREAM_FEATURES + BATCH_FEATURES


def feature(name: str) -> Feature:
    for f in FEATURES:
        if f.name == name:
            return f
    raise KeyError(f"unknown feature {name!r}; known: {', '.join(f.name for f in FEATURES)}")
