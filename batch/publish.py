"""Publish the 30-day features as of a day from the lake to the online store (Redis), apart
from computing them, so that a failed data-quality check can hold publication back."""

from __future__ import annotations

import logging
from datetime import date

import orjson

from common import lake
from common.errors import PlatformError
from common.repository import load_features
from common.settings import Settings
from features.definitions import Feature, RollingStats, RollingTopN

log = logging.getLogger(__name__)


def online_values(f: Feature, rows: list[dict]) -> dict[int, str]:
    """The value of feature f per user, as stored in the user's hash under f.name: a JSON
    list of values by rank (top-n), or a JSON object of the measures (money as a string)."""
    agg = f.aggregation
    if isinstance(agg, RollingTopN):
        ranked: dict[int, list[tuple[int, str]]] = {}
        for r in rows:
            ranked.setdefault(r["user_id"], []).append((r["rank"], r[agg.value]))
        return {user: orjson.dumps([v for _, v in sorted(vs)]).decode() for user, vs in ranked.items()}
    assert isinstance(agg, RollingStats)
    # decimals as exact strings with their column's scale ("12.50")
    scales = {c.name: int(c.flink.split(",")[1].strip(" )")) for c in f.columns if c.flink.startswith("DECIMAL(")}
    out = {}
    for r in rows:
        stats = {m.name: r[m.name] for m in agg.measures}
        for name, scale in scales.items():
            if stats.get(name) is not None:
                stats[name] = f"{stats[name]:.{scale}f}"
        out[r["user_id"]] = orjson.dumps(stats).decode()
    return out


def read_lake(settings: Settings, f: Feature, day: date) -> list[dict]:
    """The rows of feature f as of `day` from the lake (pyarrow; no Spark)."""
    import pyarrow.parquet as pq

    folder = lake.as_of_dir(settings, f.name, day)
    if not (folder / "_SUCCESS").is_file():
        raise PlatformError(
            f"no complete {f.name} as of {day} in the lake ({folder})",
            f"compute it first: lambda-features batch features-30d --date {day} --no-publish",
        )
    return pq.read_table(folder).to_pylist()


def publish_online(settings: Settings, day: date) -> int:
    """Write every user's online 30-day feature fields as of `day`; returns the users written."""
    from common.redis_store import PUBLISHED_KEY, get_redis, time_field, user_key, write_hashes

    online: dict[str, dict[str, str]] = {}
    batch = [f for f in load_features(settings).batch if f.online_column]  # as serving/online_features.py
    for f in batch:
        for user, value in online_values(f, read_lake(settings, f, day)).items():
            online.setdefault(user_key(settings, user), {}).update({f.name: value, time_field(f): day.isoformat()})
    redis = get_redis(settings)
    write_hashes(redis, settings, online)
    # the newest day published: an older as-of day in a user's hash is a value the batch no longer gives
    newest = redis.hgetall(PUBLISHED_KEY)
    later = {f.name: day.isoformat() for f in batch if newest.get(f.name, "") < day.isoformat()}
    if later:
        redis.hset(PUBLISHED_KEY, mapping=later)
    log.info("published the 30-day features as of %s for %d users", day, len(online))
    return len(online)
