"""What the demo needs besides the Dagster jobs: a clean slate, its events, the day to tier
as of, and a fingerprint of the serving views to show that tiering changes no answer."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

from common.clickhouse import close_clients, get_client
from common.redis_store import get_redis, heartbeat_key
from common.repository import load_features
from common.services import local_services
from common.settings import Settings


def reset_outputs(settings: Settings) -> None:
    """Drop what earlier runs left in the embedded stores, so the demo starts empty."""
    from streaming.deployment import StreamDeployment

    if not settings.stream.jobmanager:  # a local deployed job would write into what is removed
        StreamDeployment(settings).stop(savepoint=False)
    redis = next((svc for svc in local_services(settings) if svc.name == "redis"), None)
    if redis and redis.pid():
        client = get_redis(settings)
        for key in client.scan_iter(f"{settings.redis.key_prefix}*", count=1000):
            client.delete(key)
        client.delete(heartbeat_key(settings))
    elif redis:
        shutil.rmtree(settings.home / "redis", ignore_errors=True)
    chdb = next((svc for svc in local_services(settings) if svc.name == "clickhouse"), None)
    if chdb:  # its data path is removed below
        close_clients()
        chdb.stop()
    for d in (
        settings.archive_dir,
        settings.lake_features_dir,
        settings.dead_letter_dir,
        settings.clickhouse_dir,
        settings.home / "checkpoints",
        settings.staging_dir / "runs",
        *([] if settings.tiering.local_dir else [settings.home / "cold"]),
    ):
        shutil.rmtree(d, ignore_errors=True)


def generate_events(settings: Settings, events: int, days: int, seed: int) -> Path:
    """Seeded events spread over `days` days, as a JSON lines file in the staging area."""
    from features.adapters import to_json
    from features.generator import GeneratorConfig, generate

    path = settings.staging_dir / "runs" / f"demo-{seed}-{events}-{days}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for e in generate(GeneratorConfig(seed=seed, events_per_second=events / (days * 86400)), events):
            fh.write(to_json(e) + b"\n")
    return path


def tiering_partition(settings: Settings, days: list[date], today: date) -> date:
    """The daily_tiering partition that moves every day but the last to the cold tier: its
    'today' is the day after the partition, and days before today - hot_days move. Never a
    partition after yesterday, which does not exist yet."""
    return min(days[-1] + timedelta(days=settings.tiering.hot_days - 1), today - timedelta(days=1))


def serving_fingerprints(settings: Settings) -> dict[str, tuple[int, int]]:
    """Rows and an order-free checksum of each day-partitioned serving view (the ones tiering
    moves days of): equal before and after a move when the views answer the same."""
    client = get_client(settings)
    db = settings.clickhouse.database
    out = {}
    for f in load_features(settings).stream:
        if f.windowed:
            rows, checksum = client.query(f"SELECT count(), sum(cityHash64(*)) FROM {db}.{f.name}").result_rows[0]
            out[f.name] = (int(rows), int(checksum))
    return out
