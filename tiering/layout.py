"""Where cold partitions live: hive-style keys `<prefix>/<table>/dt=YYYY-MM-DD/part-NNNNN.parquet`
in the bucket (or under the local cold directory), and how ClickHouse reads them back."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlsplit

from common.settings import Settings
from features.definitions import Feature
from warehouse.tables import structure


def collection_name(settings: Settings) -> str:
    """The ClickHouse named collection holding the bucket URL and credentials."""
    return f"{settings.clickhouse.database}_tier"


def day_prefix(settings: Settings, table: str, day: date) -> str:
    return "/".join(p for p in (settings.tiering.prefix, table, f"dt={day.isoformat()}") if p) + "/"


def object_key(settings: Settings, table: str, day: date, n: int) -> str:
    return f"{day_prefix(settings, table, day)}part-{n:05d}.parquet"


def bucket_url(settings: Settings) -> str:
    """HTTP(S) URL of the prefix, as ClickHouse's s3() wants it (path or virtual-hosted style)."""
    t = settings.tiering
    prefix = f"{t.prefix}/" if t.prefix else ""
    if not t.endpoint_url:
        region = t.region or "us-east-1"
        return f"https://{t.bucket}.s3.{region}.amazonaws.com/{prefix}"
    if t.addressing_style == "virtual":
        u = urlsplit(t.endpoint_url)
        return f"{u.scheme}://{t.bucket}.{u.netloc}/{prefix}"
    return f"{t.endpoint_url.rstrip('/')}/{t.bucket}/{prefix}"


def uri(settings: Settings, table: str, day: date) -> str:
    """The day's location as users name it: s3://bucket/... or file:///..."""
    if settings.tiering.bucket:
        return f"s3://{settings.tiering.bucket}/{day_prefix(settings, table, day)}"
    return f"file://{settings.cold_dir / day_prefix(settings, table, day)}/"


def cold_reader(settings: Settings, table: str, days: list[date], f: Feature) -> str:
    """A subquery over the Parquet objects of these days, with their day as column `dt`.
    Hive partitioning stays off: with it, ClickHouse lists the bucket to create a view, and
    would hang every command while the store is down; few retries so a query fails fast."""
    alternatives = ",".join(d.isoformat() for d in days)
    rel = f"{table}/dt={{{alternatives}}}/*.parquet"
    if settings.tiering.bucket:
        source = (
            f"s3({collection_name(settings)}, filename = '{rel}', format = 'Parquet', structure = '{structure(f)}')"
        )
        options = "use_hive_partitioning = 0, s3_retry_attempts = 3"
    else:
        root = settings.cold_dir / settings.tiering.prefix if settings.tiering.prefix else settings.cold_dir
        source = f"file('{root}/{rel}', 'Parquet', '{structure(f)}')"
        options = "use_hive_partitioning = 0"
    cols = ", ".join(f"`{c.name}`" for c in f.columns)
    return f"(SELECT {cols}, toDate(extract(_path, 'dt=([0-9-]{{10}})')) AS dt FROM {source} SETTINGS {options})"
