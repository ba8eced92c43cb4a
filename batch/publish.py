"""Publish the 30-day features as of a day from the lake to the online store (Redis), apart
from computing them, so that a failed data-quality check can hold publication back."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

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


def published_record(settings: Settings, f: Feature) -> Path:
    """A file in the lake beside the feature's folders: the newest as-of day published online.
    Redis keeps the same in PUBLISHED_KEY, but the lake's copy survives a Redis that lost it."""
    return lake.feature_dir(settings, f.name) / "_published"


def publish_online(settings: Settings, day: date, features: list[Feature] | None = None) -> int:
    """Write every user's online 30-day feature fields (of `features`, all when None) as of `day`;
    returns the users written."""
    from common.redis_store import PUBLISHED_KEY, get_redis, time_field, user_key, write_hashes

    if features is None:  # the online ones, as serving/online_features.py
        features = [f for f in load_features(settings).batch if f.online_column]
    online: dict[str, dict[str, str]] = {}
    for f in features:
        for user, value in online_values(f, read_lake(settings, f, day)).items():
            online.setdefault(user_key(settings, user), {}).update({f.name: value, time_field(f): day.isoformat()})
    redis = get_redis(settings)
    write_hashes(redis, settings, online)
    # the newest day published: an older as-of day in a user's hash is a value the batch no longer gives
    newest = redis.hgetall(PUBLISHED_KEY)
    later = {f.name: day.isoformat() for f in features if newest.get(f.name, "") < day.isoformat()}
    if later:
        redis.hset(PUBLISHED_KEY, mapping=later)
    for f in features:
        record = published_record(settings, f)
        if not record.is_file() or record.read_text().strip() < day.isoformat():
            record.write_text(day.isoformat() + "\n")
    log.info("published %s as of %s for %d users", ", ".join(f.name for f in features), day, len(online))
    return len(online)


def republish_online(settings: Settings, names: list[str] | None = None) -> dict[str, date]:
    """Publish again the newest as-of day published of each 30-day feature (those named, all
    when None), after the online store lost them; returns what it published. A feature never
    published is left out."""
    by_day: dict[date, list[Feature]] = {}
    for f in load_features(settings).batch:
        record = published_record(settings, f)
        if (names is None or f.name in names) and record.is_file():
            by_day.setdefault(date.fromisoformat(record.read_text().strip()), []).append(f)
    for day, features in sorted(by_day.items()):
        publish_online(settings, day, features)
    return {f.name: day for day, fs in by_day.items() for f in fs}
