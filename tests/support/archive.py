"""Hand-written raw-event archives, laid out as the stream job writes them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson

from common.archive import event_dir


def at(day: date, hour: int = 12) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp() * 1000)


def write_archive(settings, events: list[dict]) -> None:
    for i, e in enumerate(events):
        folder = event_dir(settings.archive_dir, e["event_time"])
        folder.mkdir(parents=True, exist_ok=True)
        row = {
            "event_id": f"e{i}",
            "item_id": None,
            "category_id": None,
            "brand": None,
            "price": None,
            "query": None,
            "src_part": 0,
            "src_off": i,
            "late": False,
            **e,
        }
        with (folder / "part-0").open("ab") as fh:
            fh.write(orjson.dumps(row) + b"\n")
