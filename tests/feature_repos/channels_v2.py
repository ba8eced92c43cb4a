"""The channels repository, changed: top_categories_10m removed, app_clicks_10m's filter
changed (web clicks now), and web_clicks_1h added."""

from dataclasses import replace

from features.definitions import Feature, Measure, Tumble, WindowAggregate
from tests.feature_repos import channels

EVENT_ATTRIBUTES = channels.EVENT_ATTRIBUTES
APP_CLICKS_10M = replace(channels.APP_CLICKS_10M, source_filter="event_type = 'click' AND channel = 'web'")
WEB_CLICKS_1H = Feature(
    name="web_clicks_1h",
    description="Web clicks per user and tumbling hour.",
    keys=("user_id",),
    source_filter="event_type = 'click' AND channel = 'web'",
    aggregation=WindowAggregate(Tumble(3600), (Measure("clicks", "count"),)),
    order_key=("user_id", "window_start"),
)
FEATURES = tuple(
    APP_CLICKS_10M if f.name == "app_clicks_10m" else f for f in channels.FEATURES if f.name != "top_categories_10m"
) + (WEB_CLICKS_1H,)
