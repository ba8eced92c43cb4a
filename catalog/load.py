"""`catalog load FILE`: CSV (with a header) or JSON lines into the table `items`, upserted by
item_id in transactions of CATALOG__LOAD_BATCH_ROWS rows. The first invalid row stops the load
with its file and line named; the rows before it are committed and stay. With `at`, the changes
take effect at that time instead of now: the session's clock, which the binlog records."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import orjson

from common.catalog_db import TABLE, connect, where
from common.errors import PlatformError
from common.settings import Settings

log = logging.getLogger(__name__)
FIELDS = ("item_id", "category_id", "brand", "price", "title")
MAX_PRICE = Decimal("9999999999.99")  # DECIMAL(12, 2)
UPSERT = (
    f"INSERT INTO {TABLE} ({', '.join(FIELDS)}) VALUES ({', '.join(['%s'] * len(FIELDS))}) "
    f"ON DUPLICATE KEY UPDATE {', '.join(f'{c} = VALUES({c})' for c in FIELDS[1:])}"
)


class BadRow(ValueError):
    """A row that cannot be loaded; the message says why."""


@dataclass
class LoadResult:
    path: Path
    rows: int = 0  # loaded (inserted, updated or unchanged)


def _blank(v: object) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _int(row: dict, name: str, required: bool = False) -> int | None:
    v = row.get(name)
    if _blank(v):
        if required:
            raise BadRow(f"missing {name}")
        return None
    try:
        if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
            raise ValueError
        return int(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadRow(f"{name} {v!r} is not an integer") from None


def _price(row: dict) -> Decimal | None:
    v = row.get("price")
    if _blank(v):
        return None
    try:
        if isinstance(v, bool):
            raise InvalidOperation
        p = Decimal(str(v).strip())
    except InvalidOperation:
        raise BadRow(f"bad price {v!r}: not a number") from None
    if not p.is_finite() or p < 0 or p > MAX_PRICE:
        raise BadRow(f"bad price {v!r}: must be between 0 and {MAX_PRICE}")
    return p.quantize(Decimal("0.01"))


def _text(row: dict, name: str, limit: int) -> str | None:
    v = row.get(name)
    if _blank(v):
        return None
    s = str(v).strip()
    if len(s) > limit:
        raise BadRow(f"{name} longer than {limit} characters")
    return s


def parse_row(row: dict) -> tuple:
    """The row as the table takes it, or BadRow."""
    return (
        _int(row, "item_id", required=True),
        _int(row, "category_id"),
        _text(row, "brand", 255),
        _price(row),
        _text(row, "title", 1024),
    )


def read_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, raw row) of a CSV file with a header, or of JSON lines (by the file's suffix)."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json", ".ndjson"):
        raise PlatformError(f"{path}: unknown catalogue format {suffix!r}", "use a .csv file with a header or .jsonl")
    with path.open(newline="", encoding="utf-8") as fh:
        if suffix == ".csv":
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "item_id" not in reader.fieldnames:
                raise PlatformError(
                    f"{path}, line 1: the header has no item_id", f"name the columns: {','.join(FIELDS)}"
                )
            for row in reader:
                yield reader.line_num, row  # the row's (last) physical line
            return
        for n, text in enumerate(fh, 1):
            if not text.strip():
                continue
            try:
                row = orjson.loads(text)
            except orjson.JSONDecodeError as e:
                raise BadRow(f"line {n}: not JSON ({e})") from None
            if not isinstance(row, dict):
                raise BadRow(f"line {n}: not a JSON object")
            yield n, row


def load_file(settings: Settings, path: Path, at: datetime | None = None) -> LoadResult:
    """Upsert every row of the file; stop at the first invalid row, keeping those before it.
    `at` (timezone-aware) backdates the changes: a past catalogue, for replaying past events."""
    if not path.is_file():
        raise PlatformError(f"{path}: no such file")
    result = LoadResult(path)
    conn = connect(settings)
    if at is not None:
        with conn.cursor() as cur:
            cur.execute("SET timestamp = %s", (at.timestamp(),))
    batch: list[tuple] = []

    def flush() -> None:
        if batch:
            with conn.cursor() as cur:
                cur.executemany(UPSERT, batch)
            conn.commit()
            result.rows += len(batch)
            batch.clear()

    try:
        rows = read_rows(path)
        while True:
            try:
                item = next(rows, None)
                if item is None:
                    break
                line, raw = item
                batch.append(parse_row(raw))
            except BadRow as e:
                flush()
                msg = str(e) if str(e).startswith("line ") else f"line {line}: {e}"
                raise PlatformError(
                    f"{path}, {msg}; the {result.rows} row(s) before it are loaded",
                    "correct that row and load the file again (rows are upserted by item_id, so a reload is safe)",
                ) from None
            if len(batch) >= settings.catalog.load_batch_rows:
                flush()
        flush()
    finally:
        conn.close()
    log.info("catalogue: %d row(s) of %s loaded into %s.%s", result.rows, path, where(settings), TABLE)
    return result
