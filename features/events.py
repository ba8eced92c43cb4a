"""The canonical event: its columns and the rules a record must pass to be accepted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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

    Where each input format finds it: JSON lines files under `json_field` (default: the name),
    REES46 CSV in the column `rees46_column` (one of its header's names; None: absent); Kafka
    messages, the canonical wire form, under its name. Taobao rows carry no extra attribute."""

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


@dataclass(frozen=True)
class Rule:
    """An acceptance rule: a record fails it, and is dead-lettered with `reason`, when its typed
    `field` is missing, not one of `values`, below zero, or (an event time) out of range."""

    reason: str
    field: str
    test: Literal["missing", "one_of", "negative", "time_range"]
    values: tuple[str, ...] = ()

    def sql(self, min_ms: int, future_ms: int, col: str) -> str:
        """The SQL predicate that is TRUE for a bad record; `col`: the field's SQL."""
        if self.test == "missing":
            return f"{col} IS NULL"
        if self.test == "one_of":
            values = ", ".join(f"'{v}'" for v in self.values)
            return f"{col} NOT IN ({values})"
        if self.test == "negative":
            return f"{col} < 0"
        return f"{col} < {min_ms} OR {col} > UNIX_TIMESTAMP() * 1000 + {future_ms}"

    def spec(self, min_ms: int, future_ms: int) -> dict:
        """The rule as the stream job's event format reads it (jvm/: Rule.java)."""
        spec: dict = {"reason": self.reason, "field": self.field, "test": self.test}
        if self.test == "one_of":
            spec["values"] = list(self.values)
        if self.test == "time_range":
            spec |= {"min_ms": min_ms, "future_ms": future_ms}
        return spec


# Shared by every source, in the order they are reported: parse errors are caught by the
# adapters (files) or the stream job's event format (Kafka: type errors and unreadable
# records); these rules are applied once, in the stream job, to every record whatever its
# source. An event time is too new when it is over `future_ms` ahead of the clock as the
# record is read (not as the job started: a job that ran for a day would reject every new event).
RULES: tuple[Rule, ...] = (
    Rule("missing user_id", "user_id", "missing"),
    Rule("missing event_time", "event_time", "missing"),
    Rule("missing event_type", "event_type", "missing"),
    Rule("unknown event_type", "event_type", "one_of", EVENT_TYPES),
    Rule("negative price", "price", "negative"),
    Rule("event_time out of range", "event_time", "time_range"),
)


def validation_rules(min_ms: int, future_ms: int) -> list[tuple[str, str]]:
    """(reason, SQL predicate that is TRUE for a bad record), in the order they are reported."""
    return [(r.reason, r.sql(min_ms, future_ms, r.field)) for r in RULES]


def rejection_sql(min_ms: int, future_ms: int) -> str:
    """A SQL expression giving the first failed rule's reason, or NULL for a good record."""
    whens = " ".join(f"WHEN {pred} THEN '{reason}'" for reason, pred in validation_rules(min_ms, future_ms))
    return f"CASE {whens} ELSE CAST(NULL AS STRING) END"


# Kafka records are read with every field typed by the stream job's event format, so a field
# of the wrong type is dead-lettered with its reason instead of dropping the record.
_KIND = {"BIGINT": "an integer", "DOUBLE": "a number", "BOOLEAN": "a boolean"}


def type_errors(columns: tuple[Column, ...] = EVENT_COLUMNS) -> dict[str, str]:
    """The reason of each typed field present but not of its type, by field, in column order
    (the first one is reported)."""
    return {c.name: f"{c.name} not {_KIND[c.flink]}" for c in columns if c.flink != "STRING"}
