"""The item catalogue: its table's columns, the change messages (Debezium's envelope) and the
columns it adds to an event joined with it (the catalogue version valid at the event's time)."""

from __future__ import annotations

from features.events import Column

# The table `items`; `updated_at` is set by the database on every change.
ITEM_COLUMNS: tuple[Column, ...] = (
    Column("item_id", "BIGINT", "Int64"),
    Column("category_id", "BIGINT", "Nullable(Int64)"),
    Column("brand", "STRING", "Nullable(String)"),
    Column("price", "DOUBLE", "Nullable(Float64)"),  # Debezium's decimal.handling.mode=double
    Column("title", "STRING", "Nullable(String)"),
    Column("updated_at", "BIGINT", "Int64"),  # epoch ms, as Debezium writes a DATETIME(3)
)
ITEM_KEY = "item_id"
# What a feature of an enriched event reads: the item's attributes under these names (null
# for an item the catalogue does not know at the event's time, or an event without an item).
CATALOG_PREFIX = "catalog_"
ENRICHED_COLUMNS: tuple[Column, ...] = tuple(
    Column(CATALOG_PREFIX + c.name, c.flink, c.clickhouse)
    for c in ITEM_COLUMNS
    if c.name in ("category_id", "brand", "price", "title")
)
# An event of an item the catalogue does not know at its event time (the key matched no version).
UNKNOWN_ITEM = "item_id IS NOT NULL AND catalog_known IS NOT TRUE"
