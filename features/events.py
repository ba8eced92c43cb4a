"""The canonical event: its columns and the rules a record must pass to be accepted."""

from __future__ import annotations

from dataclasses import dataclass

EVENT_TYPES: tuple[str, ...] = ("click", "cart", "remove_cart", "purchase", "fav", "search", "login")
CART_EVENT_TYPES: tuple[str, ...] = ("cart", "remove_cart", "purchase")


@dataclass(frozen=True)
class Column:
    """A column with its Flink SQL and ClickHouse types."""

    name: str
    flink: str
    clickhouse: str


# Order matters: staged files, Kafka messages and the archive use it.
EVENT_COLUMNS: tuple[Column, ...] = (
    Column("event_id", "STRING", "String"),
    Column("user_id", "BIGINT", "Int64"),
    Column("item_id", "BIGINT", "Nullable(Int64)"),
    Column("category_id", "BIGINT", "Nullable(Int64)"),
    Column("brand", "STRING", "Nullable(String)"),
    Column("price", "DOUBLE", "Nullable(Float64)"),
    Column("event_type", "STRING", "String"),
    Column("query", "STRING", "Nullable(String)"),
    Column("event_time", "BIGINT", "Int64"),  # epoch milliseconds, UTC
)
# Where the event came from, for ties in event time: Kafka partition and offset,
# or file index and line number of a replay.
SOURCE_COLUMNS: tuple[Column, ...] = (
    Column("src_part", "INT", "Int32"),
    Column("src_off", "BIGINT", "Int64"),
)
EVENT_FIELDS: tuple[str, ...] = tuple(c.name for c in EVENT_COLUMNS)
# the types an extra event attribute may have, as Flink and ClickHouse name them
ATTRIBUTE_TYPES: dict[str, str] = {
    "STRING": "Nullable(String)",
    "BIGINT": "Nullable(Int64)",
    "DOUBLE": "Nullable(Float64)",
    "BOOLEAN": "Nullable(Bool)",
}


@dataclass(frozen=True)
class EventAttribute:
    """An event column a feature repository adds to the canonical event (always nullable).

    Where each input format finds it: JSON (JSON lines files and Kafka messages) under
    `json_field` (default: the name), REES46 CSV in the column `rees46_column` (one of its
    header's names; None: absent). Taobao rows carry no extra attribute."""

    name: str
    type: str = "STRING"  # one of ATTRIBUTE_TYPES
    json_field: str | None = None
    rees46_column: str | None = None
    description: str = ""

    @property
    def column(self) -> Column:
        return Column(self.name, self.type, ATTRIBUTE_TYPES.get(self.type, self.type))

    @property
    def json_name(self) -> str:
        return self.json_field or self.name


# When the stream received the event (processing time, epoch ms), archived beside it: what
# "arrived by time T" is measured by. Archives written before it was recorded lack it.
ARRIVAL_COLUMN = Column("arrived_at", "BIGINT", "Nullable(Int64)")


def validation_rules(min_ms: int, max_ms: int) -> list[tuple[str, str]]:
    """(reason, SQL predicate that is TRUE for a bad record), in the order they are reported.

    Shared by every source: parse errors are caught by the adapters, these rules are
    applied once, in the stream job, to every record whatever its source.
    """
    types = ", ".join(f"'{t}'" for t in EVENT_TYPES)
    return [
        ("missing user_id", "user_id IS NULL"),
        ("missing event_time", "event_time IS NULL"),
        ("missing event_type", "event_type IS NULL"),
        ("unknown event_type", f"event_type NOT IN ({types})"),
        ("negative price", "price < 0"),
        ("event_time out of range", f"event_time < {min_ms} OR event_time > {max_ms}"),
    ]


def rejection_sql(min_ms: int, max_ms: int) -> str:
    """A SQL expression giving the first failed rule's reason, or NULL for a good record."""
    whens = " ".join(f"WHEN {pred} THEN '{reason}'" for reason, pred in validation_rules(min_ms, max_ms))
    return f"CASE {whens} ELSE CAST(NULL AS STRING) END"
