"""The shipped 30-day features beside one with the other 30-day measures: moments and
first/last (tests/integration/test_features_30d.py: daily partials merged over days equal a
rescan of the days' events)."""

from features.definitions import DayMeasure, Feature, RollingStats
from features.ecommerce import BATCH_FEATURES

_PURCHASE = "event_type = 'purchase'"
PRICE_STATS_30D = Feature(
    name="price_stats_30d",
    description="Price moments of purchases, and the first and last brand and price seen, over 30 days.",
    keys=("user_id",),
    aggregation=RollingStats(
        measures=(
            DayMeasure("mean_price", "avg", "price", where=_PURCHASE),
            DayMeasure("price_variance", "variance", "price", where=_PURCHASE),
            DayMeasure("price_stddev", "stddev", "price"),
            DayMeasure("first_brand", "first", "brand"),
            DayMeasure("last_brand", "last", "brand", where=_PURCHASE),
            DayMeasure("last_price", "last", "price"),
        ),
        days=30,
    ),
    layer="batch",
    order_key=("as_of", "user_id"),
)
FEATURES = (*BATCH_FEATURES, PRICE_STATS_30D)
