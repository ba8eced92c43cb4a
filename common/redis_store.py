"""The online store's Redis client."""

from __future__ import annotations

from common.errors import PlatformError
from common.settings import Settings


def redis_url(settings: Settings) -> str:
    return settings.redis.url or f"redis://127.0.0.1:{settings.redis.local_port}/0"


def get_redis(settings: Settings):  # -> redis.Redis
    """A client to the configured Redis, or to the platform's local redis-server, started
    here when it is not running (and left running for other processes)."""
    import redis

    if not settings.redis.url:
        from common.services import ensure_running, redis_service

        ensure_running(redis_service(settings))

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
