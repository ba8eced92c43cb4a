"""A test repository: one new feature of each kind, several on the event attribute `channel`
(a filter on it, a group on it, a hop of another size, a session with another gap)."""

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
from features.events import EventAttribute

EVENT_ATTRIBUTES = (EventAttribute("channel", "STRING", json_field="chan", description="app, web or none"),)

APP_CLICKS_10M = Feature(
    name="app_clicks_10m",
    description="Clicks in the app per user and tumbling 10 minutes.",
    keys=("user_id",),
    source_filter="event_type = 'click' AND channel = 'app'",
    aggregation=WindowAggregate(Tumble(600), (Measure("clicks", "count"),)),
    order_key=("user_id", "window_start"),
)
CHANNEL_CLICKS_30M = Feature(
    name="channel_clicks_30m",
    description="Clicks per channel in sliding 30 minutes every 10.",
    keys=("channel",),
    source_filter="event_type = 'click'",
    aggregation=WindowAggregate(Hop(size_s=1800, slide_s=600), (Measure("clicks", "count"),)),
    order_key=("window_start", "channel"),
)
LONG_SESSIONS = Feature(
    name="long_sessions",
    description="Sessions with a 15 min gap, with their app events.",
    keys=("user_id",),
    aggregation=WindowAggregate(
        Session(gap_s=900),
        (
            Measure("session_start", "min_time"),
            Measure("session_end", "max_time"),
            Measure("events", "count"),
            Measure("app_events", "count_if", "channel = 'app'"),
        ),
    ),
    order_key=("user_id", "session_start"),
)
TOP_CATEGORIES_10M = Feature(
    name="top_categories_10m",
    description="The 3 most clicked categories per tumbling 10 minutes.",
    keys=("category_id",),
    source_filter="event_type = 'click' AND category_id IS NOT NULL",
    aggregation=WindowAggregate(
        Tumble(600), (Measure("clicks", "count"),), top_n=TopN(3, ("clicks DESC", "category_id ASC"))
    ),
    order_key=("window_start", "rank"),
)
FAV_AMOUNT = Feature(
    name="fav_amount",
    description="Sum of price over the items the user favours and has not bought since.",
    keys=("user_id",),
    source_filter="event_type IN ('fav', 'purchase')",
    aggregation=LatestStateSum(entity="item_id", value="price", member_type="fav"),
    online_column="fav_amount",
    order_key=("user_id",),
)
LAST_CHANNELS = Feature(
    name="last_channels",
    description="The channels of the user's 3 latest events that have one, newest first.",
    keys=("user_id",),
    source_filter="channel IS NOT NULL",
    aggregation=LastN(value="channel", n=3, column="channels"),
    online_column="channels",
    order_key=("user_id",),
)
LAST_PURCHASE_TIME = Feature(
    name="last_purchase_time",
    description="The time of the user's latest purchase.",
    keys=("user_id",),
    source_filter="event_type = 'purchase'",
    aggregation=Latest(),
    online_column="last_purchase_time",
    order_key=("user_id",),
)
TOP_CHANNELS_7D = Feature(
    name="top_channels_7d",
    description="The 2 channels the user bought most through over 7 days.",
    keys=("user_id",),
    source_filter="event_type = 'purchase' AND channel IS NOT NULL",
    aggregation=RollingTopN(value="channel", n=2, days=7, count="purchases"),
    layer="batch",
    online_column="channel",
    order_key=("as_of", "user_id", "rank"),
)
SPEND_7D = Feature(
    name="spend_7d",
    description="Purchases, their value and the channels used over 7 days.",
    keys=("user_id",),
    aggregation=RollingStats(
        measures=(
            DayMeasure("purchases", "count", where="event_type = 'purchase'"),
            DayMeasure("gmv", "sum_money", "price", where="event_type = 'purchase'"),
            DayMeasure("channels", "count_distinct", "channel"),
        ),
        days=7,
    ),
    layer="batch",
    order_key=("as_of", "user_id"),
)
FEATURES = (
    APP_CLICKS_10M,
    CHANNEL_CLICKS_30M,
    LONG_SESSIONS,
    TOP_CATEGORIES_10M,
    FAV_AMOUNT,
    LAST_CHANNELS,
    LAST_PURCHASE_TIME,
    TOP_CHANNELS_7D,
    SPEND_7D,
)
