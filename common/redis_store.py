"""The online store's Redis client."""

from __future__ import annotations

import re

from common.errors import PlatformError
from common.settings import Settings
from features.definitions import Feature

# hash: batch feature name -> the newest as-of day published to the online store (YYYY-MM-DD)
PUBLISHED_KEY = "lambda-features:published"


def redis_url(settings: Settings) -> str:
    return settings.redis.url or f"redis://127.0.0.1:{settings.redis.local_port}/0"


def redis_where(settings: Settings) -> str:
    """The Redis URL without credentials, for messages."""
    return re.sub(r"//[^@/]*@", "//", redis_url(settings))


def get_redis(settings: Settings):  # -> redis.Redis
    import redis

    client = redis.Redis.from_url(redis_url(settings), socket_connect_timeout=3, decode_responses=True)
    try:
        client.ping()
    except redis.RedisError as e:
        raise PlatformError(
            f"cannot reach Redis at {redis_url(settings)}: {e}",
            "check LAMBDA_FEATURES_REDIS__URL, or unset it to use the platform's local redis-server",
        ) from None
    return client


def user_key(settings: Settings, user_id: int | str) -> str:
    return f"{settings.redis.key_prefix}{user_id}"


def time_field(f: Feature) -> str | None:
    """The field of the user's hash that dates feature f's value: its event time in epoch ms
    (stream) or its as-of day (batch). None when the value is itself the event time."""
    if f.layer == "batch":
        return f"{f.name}:as_of"
    return None if f.online_column == f.time_column else f"{f.name}:event_time"
