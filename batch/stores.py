"""The stores a batch job writes, reached before Spark starts: a missing one fails in
seconds, not after the expensive part, and the embedded ones are started here."""

from __future__ import annotations

from common.clickhouse import get_client
from common.redis_store import get_redis
from common.settings import Settings


def reach_stores(settings: Settings, online: bool) -> None:
    """ClickHouse always; the online store (Redis) when the job publishes to it."""
    get_client(settings)
    if online:
        get_redis(settings)
