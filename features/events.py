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


def validation_rules(min_ms: int, future_ms: int, col=lambda name: name) -> list[tuple[str, str]]:
    """(reason, SQL predicate that is TRUE for a bad record), in the order they are reported.

    Shared by every source: parse errors are caught by the adapters (files) or in the stream
    job (Kafka: `type_rules` and malformed records), these rules are applied once, in the
    stream job, to every record whatever its source. `col` gives the SQL of a typed column.
    An event time is too new when it is over `future_ms` ahead of the clock as the record is
    read (not as the job started: a job that ran for a day would reject every new event).
    """
    types = ", ".join(f"'{t}'" for t in EVENT_TYPES)
    user, etime, etype, price = (col(c) for c in ("user_id", "event_time", "event_type", "price"))
    return [
        ("missing user_id", f"{user} IS NULL"),
        ("missing event_time", f"{etime} IS NULL"),
        ("missing event_type", f"{etype} IS NULL"),
        ("unknown event_type", f"{etype} NOT IN ({types})"),
        ("negative price", f"{price} < 0"),
        ("event_time out of range", f"{etime} < {min_ms} OR {etime} > UNIX_TIMESTAMP() * 1000 + {future_ms}"),
    ]


def _cases(rules: list[tuple[str, str]]) -> str:
    whens = " ".join(f"WHEN {pred} THEN '{reason}'" for reason, pred in rules)
    return f"CASE {whens} ELSE CAST(NULL AS STRING) END"


def rejection_sql(min_ms: int, future_ms: int) -> str:
    """A SQL expression giving the first failed rule's reason, or NULL for a good record."""
    return _cases(validation_rules(min_ms, future_ms))


# Kafka records are read with every field as text, so a field of the wrong type is
# dead-lettered by the job (with its reason) instead of dropping the record in the format.
_KIND = {"BIGINT": "an integer", "DOUBLE": "a number", "BOOLEAN": "a boolean"}


def typed_sql(c: Column) -> str:
    """A field read as text, as its column's type (NULL when it is not of that type)."""
    return f"`{c.name}`" if c.flink == "STRING" else f"TRY_CAST(`{c.name}` AS {c.flink})"


def type_rules(columns: tuple[Column, ...] = EVENT_COLUMNS) -> list[tuple[str, str]]:
    """(reason, predicate over the text fields) for a field present but not of its type."""
    return [
        (f"{c.name} not {_KIND[c.flink]}", f"`{c.name}` IS NOT NULL AND {typed_sql(c)} IS NULL")
        for c in columns
        if c.flink != "STRING"
    ]


def type_error_sql(columns: tuple[Column, ...] = EVENT_COLUMNS) -> str:
    """The first wrong-typed field's reason, or NULL."""
    return _cases(type_rules(columns))


def text_rejection_sql(min_ms: int, future_ms: int, columns: tuple[Column, ...] = EVENT_COLUMNS) -> str:
    """The first failed rule over the text fields: wrong types first, then validation_rules."""
    by_name = {c.name: c for c in columns}
    return _cases(type_rules(columns) + validation_rules(min_ms, future_ms, lambda n: typed_sql(by_name[n])))
