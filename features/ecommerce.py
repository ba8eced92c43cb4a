"""The e-commerce feature repository the platform ships: the example to copy.

A feature repository is a Python file (or a package directory) that defines `FEATURES`, a
sequence of `features.definitions.Feature`, and optionally `EVENT_ATTRIBUTES`, the event
columns it adds to the canonical event. Point LAMBDA_FEATURES_FEATURE_REPO at a copy of this
file to run the platform on your own features (docs/features.md).
"""

from __future__ import annotations

from features.definitions import (
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
    TopN,
    Tumble,
    WindowAggregate,
)
from features.events import CART_EVENT_TYPES

CART_AMOUNT = Feature(
    name="cart_amount",
    description="Sum of price over the items currently in the user's cart.",
    keys=("user_id",),
    source_filter="event_type IN (" + ", ".join(f"'{t}'" for t in CART_EVENT_TYPES) + ")",
    aggregation=LatestStateSum(entity="item_id", value="price", member_type="cart"),
    online_column="cart_amount",
    order_key=("user_id",),
)
CATEGORY_CLICKS_1H = Feature(
    name="category_clicks_1h",
    description="Clicks per category in sliding 1 h windows every 5 min.",
    keys=("user_id", "category_id"),
    source_filter="event_type = 'click'",
    aggregation=WindowAggregate(Hop(size_s=3600, slide_s=300), (Measure("clicks", "count"),)),
    order_key=("user_id", "window_start", "category_id"),
)
UV_1M = Feature(
    name="uv_1m",
    description="Distinct users and events per tumbling minute.",
    keys=(),
    aggregation=WindowAggregate(Tumble(60), (Measure("uv", "count_distinct", "user_id"), Measure("events", "count"))),
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
    order_key=("user_id", "session_start"),
)
LAST_SEARCHES = Feature(
    name="last_searches",
    description="The 10 most recent search queries, newest first.",
    keys=("user_id",),
    source_filter="event_type = 'search' AND query IS NOT NULL",
    aggregation=LastN(value="query", n=10, column="queries"),
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
    order_key=("window_start", "rank"),
)
LAST_EVENT_TIME = Feature(
    name="last_event_time",
    description="Latest event time of any event.",
    keys=("user_id",),
    aggregation=Latest(),
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
_PURCHASE = "event_type = 'purchase'"
TOP_BRANDS_30D = Feature(
    name="top_brands_30d",
    description="The 3 brands with most purchases over the last 30 days, ties by brand name.",
    keys=("user_id",),
    source_filter="event_type = 'purchase' AND brand IS NOT NULL",
    aggregation=RollingTopN(value="brand", n=3, days=30, count="purchases"),
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
            DayMeasure("gmv", "sum_money", "price", where=_PURCHASE),
            DayMeasure("distinct_items", "count_distinct", "item_id", where=_PURCHASE),
            DayMeasure("active_days", "count_distinct", "to_date(ts)"),
        ),
        days=30,
    ),
    layer="batch",
    online_column="purchases",
    order_key=("as_of", "user_id"),
)
BATCH_FEATURES: tuple[Feature, ...] = (TOP_BRANDS_30D, PURCHASE_STATS_30D)
FEATURES: tuple[Feature, ...] = STREAM_FEATURES + BATCH_FEATURES
