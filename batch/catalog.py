"""The batch side of the catalogue join: each event with the item's version valid at its event
time, from the change history the stream job archives (common/archive.py), as the stream's
event-time temporal join does it:
- a change is valid from its time in the source database (`changed_at`) until the item's next
  change; of changes at the same time the last in binlog order wins;
- a delete ends the item; an event of an item without a valid version gets null attributes.
A change re-archived by a later run of the stream job (same binlog position) counts once."""

from __future__ import annotations

from common import archive
from common.repository import load_features
from common.settings import Settings
from features.catalog import CATALOG_PREFIX, ITEM_COLUMNS, ITEM_KEY

SPARK_TYPES = {"STRING": "string", "BIGINT": "bigint", "DOUBLE": "double", "INT": "int"}
HISTORY_DDL = (
    "op string, "
    + ", ".join(f"`{c.name}` {SPARK_TYPES[c.flink]}" for c in ITEM_COLUMNS)
    + ", changed_at bigint, binlog_file string, binlog_pos bigint, binlog_row int, src_part int, src_off bigint"
)
ATTRIBUTES = [c.name for c in ITEM_COLUMNS if c.name not in (ITEM_KEY, "updated_at")]


def versions(spark, settings: Settings):
    """Every version of every item: its attributes, valid_from, valid_to (null: still valid), op."""
    glob = archive.catalog_history_parts(settings)
    if glob is None:
        history = spark.createDataFrame([], HISTORY_DDL)
    else:
        history = spark.read.schema(HISTORY_DDL).json(glob)
    history.dropDuplicates(["binlog_file", "binlog_pos", "binlog_row"]).createOrReplaceTempView("catalog_history")
    order = "changed_at, CAST(substring_index(binlog_file, '.', -1) AS BIGINT), binlog_pos, binlog_row"
    return spark.sql(
        f"SELECT {ITEM_KEY}, {', '.join(ATTRIBUTES)}, op, changed_at AS valid_from, "
        f"LEAD(changed_at) OVER (PARTITION BY {ITEM_KEY} ORDER BY {order}) AS valid_to FROM catalog_history"
    )


def enrich(spark, settings: Settings, events):
    """The events with the catalogue columns of features/catalog.py and `catalog_known`."""
    from pyspark.sql import functions as F

    v = versions(spark, settings).alias("v")
    e = events.alias("e")
    cond = (
        (F.col(f"e.{ITEM_KEY}") == F.col(f"v.{ITEM_KEY}"))
        & (F.col("v.valid_from") <= F.col("e.event_time"))
        & (F.col("v.valid_to").isNull() | (F.col("e.event_time") < F.col("v.valid_to")))
    )
    live = F.col("v.op").isNotNull() & (F.col("v.op") != "d")
    attrs = [F.when(live, F.col(f"v.{a}")).alias(CATALOG_PREFIX + a) for a in ATTRIBUTES]
    return e.join(F.broadcast(v), cond, "left").select("e.*", *attrs, live.alias("catalog_known"))


def needed(settings: Settings) -> bool:
    """Does a streaming feature of the settings' repository read the catalogue?"""
    return any(f.enriched for f in load_features(settings).stream)
