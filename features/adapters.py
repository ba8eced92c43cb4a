"""Source formats -> canonical event dicts. Adapters only parse and map; the acceptance
rules (features/events.py) are applied once, in the stream job, to every source alike.
A feature repository's event attributes are read too, where their format has them."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson

from features.events import EVENT_FIELDS, EventAttribute

Event = dict[str, Any]


class ParseError(ValueError):
    """The line cannot be read as an event; the message says why."""


def _int(value: str, name: str) -> int | None:
    value = value.strip()
    if value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ParseError(f"{name} is not an integer: {value!r}") from None


def _float(value: str, name: str) -> float | None:
    value = value.strip()
    if value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise ParseError(f"{name} is not a number: {value!r}") from None


def attribute(a: EventAttribute, v: Any) -> Any:
    """An attribute's value as its type, from JSON or CSV text; None when absent or empty."""
    if v is None or v == "":
        return None
    if a.type == "STRING":
        return str(v).translate(_CONTROL)
    if a.type == "BIGINT":
        if isinstance(v, str):
            return _int(v, a.name)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        raise ParseError(f"{a.name} is not an integer: {v!r}")
    if a.type == "DOUBLE":
        if isinstance(v, str):
            return _float(v, a.name)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
        raise ParseError(f"{a.name} is not a number: {v!r}")
    if isinstance(v, bool):  # BOOLEAN
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    raise ParseError(f"{a.name} is not a boolean: {v!r}")


Attributes = Sequence[EventAttribute]
TAOBAO_TYPES = {"pv": "click", "cart": "cart", "fav": "fav", "buy": "purchase"}
REES46_TYPES = {"view": "click", "cart": "cart", "remove_from_cart": "remove_cart", "purchase": "purchase"}


def parse_taobao(line: str, event_id: str, attributes: Attributes = ()) -> Event:
    """`user_id,item_id,category_id,behavior,timestamp` (epoch seconds), no header; no attribute."""
    parts = line.rstrip("\r\n").split(",")
    if len(parts) != 5:
        raise ParseError(f"expected 5 comma-separated fields, got {len(parts)}")
    user, item, cat, behavior, ts = parts
    seconds = _int(ts, "timestamp")
    behavior = behavior.strip()
    return {
        "event_id": event_id,
        "user_id": _int(user, "user_id"),
        "item_id": _int(item, "item_id"),
        "category_id": _int(cat, "category_id"),
        "brand": None,
        "price": None,
        "event_type": TAOBAO_TYPES.get(behavior, behavior),  # unknown ones are rejected downstream
        "query": None,
        "event_time": None if seconds is None else seconds * 1000,
    } | {a.name: None for a in attributes}


REES46_HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
REES46_COLUMNS = tuple(REES46_HEADER.split(","))


def parse_rees46(line: str, event_id: str, attributes: Attributes = ()) -> Event:
    """REES46 e-commerce CSV: `2019-10-01 00:00:00 UTC` times, product_id -> item_id; an
    attribute from its `rees46_column`."""
    row = next(csv.reader([line]))
    if len(row) != 9:
        raise ParseError(f"expected 9 comma-separated fields, got {len(row)}")
    when, etype, product, cat, _code, brand, price, user, _session = row
    return {
        "event_id": event_id,
        "user_id": _int(user, "user_id"),
        "item_id": _int(product, "product_id"),
        "category_id": _int(cat, "category_id"),
        "brand": brand.strip().lower() or None,
        "price": _float(price, "price"),
        "event_type": REES46_TYPES.get(etype.strip(), etype.strip()),
        "query": None,
        "event_time": parse_time(when.replace(" UTC", "+00:00")) if when.strip() else None,
    } | {
        a.name: attribute(a, row[REES46_COLUMNS.index(a.rees46_column)].strip()) if a.rees46_column else None
        for a in attributes
    }


def parse_time(value: Any) -> int | None:
    """Epoch milliseconds from an integer or an ISO-8601 string with a zone."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ParseError(f"event_time is not a time: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ParseError(f"event_time is not ISO-8601: {value!r}") from None
        if dt.tzinfo is None:
            raise ParseError(f"event_time has no zone: {value!r}")
        return int(dt.timestamp() * 1000)
    raise ParseError(f"event_time is not a time: {value!r}")


def _json_int(d: dict[str, Any], name: str) -> int | None:
    v = d.get(name)
    if v is None or (isinstance(v, int) and not isinstance(v, bool)):
        return v
    if isinstance(v, str):
        return _int(v, name)
    raise ParseError(f"{name} is not an integer: {v!r}")


_CONTROL = {c: " " for c in range(0x20)}


def _json_str(d: dict[str, Any], name: str) -> str | None:
    """A text field; control characters become spaces (the stream uses them as separators)."""
    v = d.get(name)
    return None if v is None else str(v).translate(_CONTROL)


def parse_jsonl(line: str, event_id: str, attributes: Attributes = ()) -> Event:
    """One canonical event as a JSON object; event_time as epoch ms or ISO-8601 with a zone;
    an attribute under its `json_field` (default: its name)."""
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise ParseError(f"not valid JSON: {e}") from None
    if not isinstance(d, dict):
        raise ParseError("not a JSON object")
    price = d.get("price")
    if price is not None and (isinstance(price, bool) or not isinstance(price, int | float)):
        raise ParseError(f"price is not a number: {price!r}")
    brand = _json_str(d, "brand")
    return {
        "event_id": _json_str(d, "event_id") or event_id,
        "user_id": _json_int(d, "user_id"),
        "item_id": _json_int(d, "item_id"),
        "category_id": _json_int(d, "category_id"),
        "brand": brand.lower() if brand else None,
        "price": None if price is None else float(price),
        "event_type": _json_str(d, "event_type"),
        "query": _json_str(d, "query"),
        "event_time": parse_time(d.get("event_time")),
    } | {a.name: attribute(a, d.get(a.json_name)) for a in attributes}


PARSERS: dict[str, Callable[[str, str, Attributes], Event]] = {
    "taobao": parse_taobao,
    "rees46": parse_rees46,
    "jsonl": parse_jsonl,
}
FORMATS = tuple(PARSERS)


def read_lines(
    fmt: str, lines: Iterator[str], source: str, attributes: Attributes = ()
) -> Iterator[tuple[int, Event | None, str, str | None]]:
    """Yield (line_no, event or None, raw line, parse error) for each non-blank line."""
    parse = PARSERS[fmt]
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if fmt == "rees46" and no == 1 and line.startswith("event_time,"):
            continue
        try:
            yield no, parse(line, f"{source}:{no}", attributes), line, None
        except ParseError as e:
            yield no, None, line, str(e)


def to_json(event: Event, attributes: Attributes = ()) -> bytes:
    """The canonical wire form (Kafka messages, JSON lines files): an attribute under its name."""
    return orjson.dumps({k: event.get(k) for k in (*EVENT_FIELDS, *(a.name for a in attributes))})
