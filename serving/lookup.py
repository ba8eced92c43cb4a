"""One user's feature entries from the fields of their hash: decoded values, the time that
dates each, and its status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from serving.online_features import ONLINE, OnlineFeature, iso_ms
from serving.status import Bounds, batch_status, stream_status


class CorruptValue(Exception):
    """A stored string that does not decode as its feature's type."""


@dataclass(frozen=True)
class FieldLayout:
    """The hash fields to read for some features, and where each feature's value and time are."""

    fields: list[str]
    slots: tuple[tuple[OnlineFeature, int, int | None], ...]  # feature, value index, time index
    needs_published: bool


@lru_cache(maxsize=256)
def field_layout(names: tuple[str, ...]) -> FieldLayout:
    fields: list[str] = []
    slots = []
    for name in names:
        of = ONLINE[name]
        fields.append(name)
        vi, ti = len(fields) - 1, None
        if of.time_field:
            fields.append(of.time_field)
            ti = len(fields) - 1
        slots.append((of, vi, ti))
    return FieldLayout(fields, tuple(slots), any(of.layer == "batch" for of, _, _ in slots))


def entries(p: FieldLayout, values: list[str | None], published: dict[str, str], bounds: Bounds) -> dict[str, dict]:
    """The entries of one user, by feature name; `values` are the HMGET of p.fields."""
    out: dict[str, dict[str, Any]] = {}
    for of, vi, ti in p.slots:
        raw = values[vi]
        t = None if raw is None else (values[ti] if ti is not None else raw)
        try:
            value = None if raw is None else of.decode(raw)
            when = None if t is None else (iso_ms(t) if of.layer == "stream" else date.fromisoformat(t).isoformat())
        except (ValueError, ArithmeticError, OSError) as e:  # orjson's errors are ValueErrors; huge times overflow
            raise CorruptValue(f"{of.name}: {e}") from None
        if of.layer == "stream":
            status = "NOT_FOUND" if raw is None else stream_status(t, bounds)
            out[of.name] = {"status": status, "value": value, "event_time": when}
        else:
            status = "NOT_FOUND" if raw is None else batch_status(t, published.get(of.name), bounds)
            out[of.name] = {"status": status, "value": value, "as_of": when}
    return out
