"""Publication of a day's batch features to the online store (Redis)."""

from dagster import AssetExecutionContext, AssetsDefinition, BackfillPolicy, Definitions, MaterializeResult, asset

from common.repository import load_features
from common.settings import Settings
from orchestration.assets.batch import clickhouse_key
from orchestration.partitions import daily_partitions, days_of
from orchestration.resources import RedisResource


def online_store_asset(settings: Settings) -> AssetsDefinition:
    repo = load_features(settings)

    @asset(
        group_name="online",
        owners=["team:serving"],
        kinds={"redis"},
        partitions_def=daily_partitions(settings),
        backfill_policy=BackfillPolicy.single_run(),
        # every ClickHouse feature table of the day, so a failed blocking data-quality check
        # on any of them holds the publication back
        deps=[clickhouse_key(f) for f in (*repo.stream, *repo.batch)],
        description="The 30-day features as of the day, written into each user's Redis hash "
        "(fields " + ", ".join(f.name for f in repo.batch) + "). Runs only after the day's "
        "data-quality checks pass.",
    )
    def online_store(context: AssetExecutionContext, redis: RedisResource) -> MaterializeResult:
        from batch.publish import publish_online

        s = redis.settings()  # publish_online starts the local Redis when it is the one
        days = days_of(context)
        users = 0
        for day in days:  # in order, so the hashes end as of the last day
            users = publish_online(s, day)
            context.log.info("published the 30-day features as of %s for %d users", day, users)
        return MaterializeResult(
            metadata={
                "as of": str(days[-1]),
                "users written": users,
                "fields": ", ".join(f.name for f in repo.batch),
                "Redis": s.redis.url or f"redis://127.0.0.1:{s.redis.local_port} (local)",
                "key": f"{s.redis.key_prefix}<user_id>",
            }
        )

    return online_store


def build_defs(settings: Settings) -> Definitions:
    return Definitions(assets=[online_store_asset(settings)])
