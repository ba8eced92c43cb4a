"""Reads of the user hashes, bounded in time: a Redis that is down or stuck is an error
after `SERVING__REDIS_TIMEOUT_S`, never a hang."""

from __future__ import annotations

import asyncio

from common.redis_store import PUBLISHED_KEY, redis_url, redis_where, user_key
from common.settings import Settings


class StoreUnavailable(Exception):
    """The online store did not answer in time."""


class OnlineStore:
    """An asyncio Redis client over a connection pool."""

    def __init__(self, settings: Settings) -> None:
        import redis.asyncio as aioredis

        self.settings = settings
        self.timeout = settings.serving.redis_timeout_s
        self.where = redis_where(settings)
        self.redis = aioredis.Redis.from_url(
            redis_url(settings), socket_timeout=self.timeout, socket_connect_timeout=self.timeout, decode_responses=True
        )

    async def hashes(
        self, user_ids: list[int], fields: list[str], published: bool
    ) -> tuple[list[list[str | None]], dict[str, str]]:
        """HMGET of `fields` in each user's hash, and the newest published as-of days when
        `published`; one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for u in user_ids:
            pipe.hmget(user_key(self.settings, u), fields)
        if published:
            pipe.hgetall(PUBLISHED_KEY)
        out = await self._bounded(pipe.execute())
        return (out[:-1], out[-1]) if published else (out, {})

    async def ping(self) -> None:
        await self._bounded(self.redis.ping())

    async def _bounded(self, call):
        from redis.exceptions import RedisError

        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except (RedisError, OSError, TimeoutError) as e:
            reason = str(e) or type(e).__name__
            raise StoreUnavailable(
                f"the online store (Redis at {self.where}) is unavailable: {reason} "
                f"(SERVING__REDIS_TIMEOUT_S = {self.timeout:g} s)"
            ) from None

    async def close(self) -> None:
        await self.redis.aclose()
