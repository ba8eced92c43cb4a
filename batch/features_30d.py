"""The 30-day features as of day D (batch only): lake, ClickHouse and the online store."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

import orjson

from common.errors import PlatformError
from common.settings import Settings
from features.definitions import BATCH_FEATURES, RollingStats, RollingTopN

log = logging.getLogger(__name__)


@dataclass
class Features30dResult:
    day: date
    rows: dict[str, int] = field(default_factory=dict)
    lake: dict[str, str] = field(default_factory=dict)
    missing_days: list[str] = field(default_factory=list)
    users_published: int = 0


def compute(spark, settings: Settings, day: date) -> tuple[dict, Features30dResult]:
    from batch.reconcile import load_events
    from batch.sql import spark_sql

    result = Features30dResult(day)
    frames = {}
    for f in BATCH_FEATURES:
        agg = f.aggregation
        assert isinstance(agg, RollingTopN | RollingStats)
        days = [day - timedelta(days=k) for k in range(agg.days - 1, -1, -1)]
        missing: list[str] = []
        load_events(spark, settings, days, missing).createOrReplaceTempView("events")
        result.missing_days = sorted(set(result.missing_days) | set(missing))
        frames[f.name] = spark.sql(spark_sql(f, day.isoformat()))
    return frames, result


def run(settings: Settings, day: date) -> Features30dResult:
    """Compute, write the lake (as_of=D, replaced), replace D in ClickHouse, publish to Redis."""
    from batch.reconcile import require_ended
    from batch.spark import spark_session
    from common.clickhouse import create_tables, get_client
    from common.redis_store import get_redis, user_key

    require_ended(day)
    spark = spark_session(settings)
    frames, result = compute(spark, settings, day)
    if len(result.missing_days) == 30:
        raise PlatformError(f"no archived events in the 30 days up to {day} under {settings.archive_dir}")
    create_tables(settings)
    ch = get_client(settings)
    db = settings.clickhouse.database
    online: dict[str, dict[str, str]] = {}
    for f in BATCH_FEATURES:
        out = settings.lake_features_dir / f.name / f"as_of={day.isoformat()}"
        frames[f.name].write.mode("overwrite").parquet(str(out))
        rows = spark.read.parquet(str(out)).collect()
        result.rows[f.name], result.lake[f.name] = len(rows), str(out)
        cols = ", ".join(f"`{c.name}`" for c in f.columns)
        ch.command(f"ALTER TABLE {db}.{f.name} DROP PARTITION '{day.isoformat()}'")
        ch.command(f"INSERT INTO {db}.{f.name} ({cols}) SELECT {cols} FROM file('{out}/*.parquet', Parquet)")
        if isinstance(f.aggregation, RollingTopN):
            ranked: dict[int, list[tuple[int, str]]] = {}
            for r in rows:
                ranked.setdefault(r["user_id"], []).append((r["rank"], r["brand"]))
            for user, brands in ranked.items():
                online.setdefault(user_key(settings, user), {})[f.name] = orjson.dumps(
                    [b for _, b in sorted(brands)]
                ).decode()
        else:
            for r in rows:
                stats = {name: r[name] for name, _ in f.aggregation.measures}  # type: ignore[union-attr]
                stats["gmv"] = f"{stats['gmv']:.2f}"
                online.setdefault(user_key(settings, r["user_id"]), {})[f.name] = orjson.dumps(stats).decode()
        log.info("%s as of %s: %d rows -> %s", f.name, day, len(rows), out)
    redis = get_redis(settings)
    pipe = redis.pipeline(transaction=False)
    for key, mapping in online.items():
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, settings.redis.key_ttl_s)
    pipe.execute()
    result.users_published = len(online)
    return result
