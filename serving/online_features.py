"""Which features are online, how their stored strings decode and what JSON type each has:
all derived from the feature repository and the store layout in common/redis_store.py. They
are the process's: the API's request and response models are built from them at import."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, create_model

from common.redis_store import time_field
from common.repository import load_features
from common.settings import Settings, settings
from features.definitions import Feature, RollingStats, RollingTopN
from features.events import Column

# Money is kept as the exact decimal string the writers store ("12.50"), never a float.
MONEY_PATTERN = r"^-?[0-9]+\.[0-9]+$"
Money = Annotated[str, Field(pattern=MONEY_PATTERN, examples=["12.50"])]
_money = re.compile(MONEY_PATTERN)


def money(raw: str) -> str:
    if not _money.match(raw):
        raise ValueError(f"not a decimal amount: {raw!r}")
    return raw


def iso_ms(epoch_ms: int | str) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds, e.g. 2026-01-01T00:00:00.000Z."""
    return datetime.fromtimestamp(int(epoch_ms) / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _type(col: Column) -> tuple[Any, Callable[[str], Any]]:
    """A column's API type and the decoder of its stored string."""
    ch = col.clickhouse
    if ch.startswith("Nullable("):
        ch = ch[len("Nullable(") : -1]
    if ch.startswith("Decimal"):
        return Money, money
    if ch.startswith("DateTime64"):
        return datetime, iso_ms
    if ch.startswith("Array("):
        item, _ = _type(Column(col.name, "", ch[len("Array(") : -1]))
        return list[item], orjson.loads
    if ch.startswith(("Int", "UInt")):
        return int, int
    if ch == "String":
        return str, str
    raise TypeError(f"no API type for {col.name} {col.clickhouse}")


def _column(f: Feature, name: str) -> Column:
    return next(c for c in f.columns if c.name == name)


@dataclass(frozen=True)
class OnlineFeature:
    """A feature kept in the user's hash under its name."""

    name: str
    layer: Literal["stream", "batch"]
    description: str
    value_type: Any  # the value's JSON type, for the OpenAPI schema
    decode: Callable[[str], Any]  # stored string -> JSON value
    time_field: str | None  # the hash field dating the value; None: the value is its own event time


def online_feature(f: Feature) -> OnlineFeature:
    agg = f.aggregation
    if f.layer == "stream":
        value_type, decode = _type(_column(f, f.online_column))  # type: ignore[arg-type]
    elif isinstance(agg, RollingTopN):  # a JSON list of the values by rank (batch/publish.py)
        value_type, decode = list[_type(_column(f, agg.value))[0]], orjson.loads
    elif isinstance(agg, RollingStats):  # a JSON object of the measures
        fields = {m.name: (_type(_column(f, m.name))[0], ...) for m in agg.measures}
        value_type, decode = create_model(_camel(f.name) + "Value", **fields), orjson.loads  # type: ignore[call-overload]
    else:
        raise TypeError(f"{f.name}: no online form for {type(agg).__name__}")
    return OnlineFeature(f.name, f.layer, f.description, value_type, decode, time_field(f))


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_"))


def online_features(s: Settings) -> dict[str, OnlineFeature]:
    """The online features of the settings' repository, by name."""
    return {f.name: online_feature(f) for f in load_features(s).features if f.online_column}


ONLINE: dict[str, OnlineFeature] = online_features(settings())
