"""The online store's Redis client."""

from __future__ import annotations

import re
from collections.abc import Iterable

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


LOADING_RETRIES = 70


def get_redis(settings: Settings):  # -> redis.Redis
    """A client to the configured Redis, or to the platform's local redis-server, started
    here when it is not running (and left running for other processes)."""
    import redis

    if not settings.redis.url:
        from common.services import ensure_running, redis_service

        ensure_running(redis_service(settings))

    from redis.backoff import ExponentialBackoff
    from redis.exceptions import BusyLoadingError
    from redis.retry import Retry

    # A Redis with an append-only file answers LOADING while it reads it back after a start:
    # each command waits that out (up to about a minute) instead of failing.
    client = redis.Redis.from_url(
        redis_url(settings),
        socket_connect_timeout=3,
        decode_responses=True,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), LOADING_RETRIES),
        retry_on_error=[BusyLoadingError],
    )
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


def heartbeat_key(settings: Settings) -> str:
    """A sorted set the stream loader keeps the newest `last_event_time` it wrote in (outside
    the user keys' prefix, so scans of the users never see it)."""
    return f"lf-heartbeat:{settings.redis.key_prefix}"


def queue_heartbeat(pipe, settings: Settings, online: Iterable[tuple[tuple[str, str], str]]) -> None:
    """Add to a pipeline writing `online` ((key, feature) -> value): raise the heartbeat to the
    newest `last_event_time` among them (ZADD GT: concurrent loaders never lower it)."""
    newest = max((int(v) for (_, f), v in online if f == "last_event_time"), default=None)
    if newest is not None:
        key = heartbeat_key(settings)
        pipe.zadd(key, {"last_event_time": newest}, gt=True)
        pipe.expire(key, settings.redis.key_ttl_s)


def newest_online_event_ms(redis, settings: Settings) -> int | None:
    """The newest `last_event_time` in the online store, from the heartbeat (O(1))."""
    score = redis.zscore(heartbeat_key(settings), "last_event_time")
    return int(score) if score is not None else None


def time_field(f: Feature) -> str | None:
    """The field of the user's hash that dates feature f's value: its event time in epoch ms
    (stream) or its as-of day (batch). None when the value is itself the event time."""
    if f.layer == "batch":
        return f"{f.name}:as_of"
    return None if f.online_column == f.time_column else f"{f.name}:event_time"


def write_hashes(redis, settings: Settings, by_key: dict[str, dict[str, str]], chunk: int = 10_000) -> None:
    """HSET each key's fields and renew its TTL, pipelined `chunk` keys at a time."""
    pipe = redis.pipeline(transaction=False)
    for n, (key, mapping) in enumerate(by_key.items(), start=1):
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, settings.redis.key_ttl_s)
        if n % chunk == 0:
            pipe.execute()
    pipe.execute()


def marker_key(settings: Settings) -> str:
    """A hash the online loader writes last in every flush: "<topic>:<partition>" -> the offset
    up to which the store holds that partition's changes. Gone or behind what the loader wrote
    (or committed), it shows the store lost acknowledged writes."""
    return f"lf-online-marker:{settings.redis.key_prefix}"


def rebuild_request_key(settings: Settings) -> str:
    """A string `stream rebuild-online` sets (JSON list of feature names, [] for all) for the
    running online loader to take (GETDEL: exactly one taker)."""
    return f"lf-online-rebuild:{settings.redis.key_prefix}"
