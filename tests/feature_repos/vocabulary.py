"""A test repository using every measure of the window vocabulary in every window kind
(tests/e2e/test_vocabulary.py), on canonical columns and on the attribute `qty`. Output columns
are derived, never restated."""

from features.definitions import DayMeasure, Feature, Hop, Measure, RollingStats, Session, Tumble, WindowAggregate
from features.events import EventAttribute

EVENT_ATTRIBUTES = (EventAttribute("qty", "BIGINT", description="units, on item events"),)

MEASURES = (
    Measure("events", "count"),
    Measure("spend", "sum", "price"),  # DOUBLE: an exact DECIMAL(38, 6)
    Measure("units", "sum", "qty"),  # BIGINT: a BIGINT
    Measure("avg_price", "avg", "price"),
    Measure("min_price", "min", "price"),
    Measure("max_units", "max", "qty"),
    Measure("min_brand", "min", "brand"),
    Measure("sd_price", "stddev", "price"),
    Measure("var_units", "variance", "qty"),
    Measure("first_brand", "first", "brand"),
    Measure("last_brand", "last", "brand"),
    Measure("first_units", "first", "qty"),
    Measure("last_price", "last", "price"),
    Measure("first_brands", "first_k", "brand", k=3),
    Measure("last_brands", "last_k", "brand", k=3),
    Measure("last_items", "last_k", "item_id", k=2),
    Measure("top_brands", "top_k", "brand", k=2),
    Measure("brand_counts", "histogram", "brand", k=3),
    Measure("top_units", "top_k", "qty", k=2),  # BIGINT values, counted as text
    Measure("unit_counts", "histogram", "qty", k=2),
)


def _feature(name: str, window, measures, order_key) -> Feature:
    return Feature(
        name=name,
        description=f"The vocabulary's measures in a {type(window).__name__} window.",
        keys=("user_id",),
        aggregation=WindowAggregate(window, measures),
        order_key=order_key,
    )


WINDOWS = ("user_id", "window_start")
FEATURES = (
    _feature("vocab_tumble", Tumble(600), MEASURES, WINDOWS),
    _feature("vocab_hop", Hop(size_s=1200, slide_s=600), MEASURES, WINDOWS),
    _feature(
        "vocab_session",
        Session(gap_s=300),
        (Measure("session_start", "min_time"), Measure("session_end", "max_time"), *MEASURES),
        ("user_id", "session_start"),
    ),
    Feature(
        name="spend_30d",
        description="The 30-day measures of the vocabulary: sums, minima, maxima, moments, first and last.",
        keys=("user_id",),
        aggregation=RollingStats(
            measures=(
                DayMeasure("purchases", "count", where="event_type = 'purchase'"),
                DayMeasure("spend", "sum", "price"),
                DayMeasure("units", "sum", "qty"),
                DayMeasure("cheapest", "min", "price"),
                DayMeasure("most_units", "max", "qty"),
                DayMeasure("last_brand_name", "max", "brand"),
                DayMeasure("avg_price", "avg", "price"),
                DayMeasure("var_units", "variance", "qty"),
                DayMeasure("sd_price", "stddev", "price", where="event_type = 'purchase'"),
                DayMeasure("first_brand", "first", "brand"),
                DayMeasure("last_units", "last", "qty"),
            ),
            days=30,
        ),
        layer="batch",
        order_key=("as_of", "user_id"),
    ),
)
