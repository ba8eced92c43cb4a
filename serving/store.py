"""Reads of the user hashes, bounded in time: a Redis that is down or stuck is an error
after `SERVING__REDIS_TIMEOUT_S`, never a hang."""

from __future__ import annotations

import asyncio

import orjson

from common.redis_store import PUBLISHED_KEY, redis_url, redis_where, user_key
from common.settings import Settings
from serving.lookup import CorruptValue

# Redis's Lua, so that a batch is one command and its answer one JSON string that orjson
# reads in C, instead of redis-py parsing every field of every hash in Python (twice the
# server's CPU for 100 users). KEYS[1]: the published as-of days, or "" for none; then the users.
READ_HASHES = """
local rows = {}
for i = 2, #KEYS do rows[i - 1] = redis.call('HMGET', KEYS[i], unpack(ARGV)) end
local pub = {}
if KEYS[1] ~= '' then pub = redis.call('HGETALL', KEYS[1]) end
return cjson.encode({pub, rows})
"""


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
        self._read = self.redis.register_script(READ_HASHES)

    async def hashes(
        self, user_ids: list[int], fields: list[str], published: bool
    ) -> tuple[list[list[str | None]], dict[str, str]]:
        """HMGET of `fields` in each user's hash, and the newest published as-of days when
        `published`: one script call, one round trip, one JSON string back."""
        keys = [PUBLISHED_KEY if published else ""] + [user_key(self.settings, u) for u in user_ids]
        raw = await self._bounded(self._read(keys=keys, args=fields))
        try:
            pub, rows = orjson.loads(raw)
        except (ValueError, TypeError) as e:
            raise CorruptValue(f"the online store's answer is not JSON (a value not UTF-8?): {e}") from None
        # Lua's nil is false in JSON; an empty Lua table is an object
        rows = [[v if v is not False else None for v in row] for row in rows]
        return rows, dict(zip(pub[::2], pub[1::2], strict=True)) if pub else {}

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
