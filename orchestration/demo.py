"""What the demo needs besides the Dagster jobs: a clean slate, its events and their item
catalogue, the day to tier as of, and a fingerprint of the serving views to show that tiering
changes no answer."""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson

from common.clickhouse import close_clients, get_client, row_checksum
from common.redis_store import get_redis, heartbeat_key
from common.repository import load_features
from common.services import ensure_running, kafka_service, local_services, mariadb_service, relay_service
from common.settings import Settings
from features.generator import GeneratorConfig


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
    # The catalogue starts over too: its database, the relay's position and the broker's topics.
    for svc in reversed(local_services(settings, monitoring=False, catalog=True)):
        if svc.name in ("catalog-relay", "mariadb", "kafka"):
            svc.stop()
    for d in (
        settings.home / "catalog",
        settings.home / "kafka",
        settings.catalog_history_dir,
        settings.archive_dir,
        settings.lake_features_dir,
        settings.dead_letter_dir,
        settings.clickhouse_dir,
        settings.home / "checkpoints",
        settings.staging_dir / "runs",
        *([] if settings.tiering.local_dir else [settings.home / "cold"]),
    ):
        shutil.rmtree(d, ignore_errors=True)


def generator_config(events: int, days: int, seed: int) -> GeneratorConfig:
    return GeneratorConfig(seed=seed, events_per_second=events / (days * 86400))


def generate_events(settings: Settings, cfg: GeneratorConfig, events: int) -> Path:
    """Seeded events, as a JSON lines file in the staging area."""
    from features.adapters import to_json
    from features.generator import generate

    path = settings.staging_dir / "runs" / f"demo-{cfg.seed}-{events}-{cfg.events_per_second:g}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for e in generate(cfg, events):
            fh.write(to_json(e) + b"\n")
    return path


@dataclass(frozen=True)
class DemoCatalogue:
    """What the demo loaded into the item catalogue, and when each version takes effect."""

    items: int
    unknown_items: int
    unknown_event_share: float  # of the events with an item
    changed_brands: int
    changed_prices: int
    first: tuple[Path, datetime]
    second: tuple[Path, datetime]


def load_catalogue(settings: Settings, cfg: GeneratorConfig, events: Path, days: int) -> DemoCatalogue:
    """A catalogue for the items the events use, loaded as `catalog load --at` would, in two
    versions: the first a day before the events, the second half way through them. The local
    MariaDB, broker and CDC relay are started first, and every change is relayed on return."""
    from catalog.load import load_file
    from catalog.observe import wait_relayed
    from features.generator import generate_catalogue

    item_events = Counter(
        item for line in events.read_bytes().splitlines() if (item := orjson.loads(line).get("item_id")) is not None
    )
    cat = generate_catalogue(cfg, dict(item_events))
    start = datetime.fromtimestamp(cfg.start_ms / 1000, UTC)
    versions = []
    for name, rows, at in (
        ("first", cat.first, start - timedelta(days=1)),
        ("second", cat.second, start + timedelta(days=days / 2)),
    ):
        path = events.with_name(f"{events.stem}-catalogue-{name}.jsonl")
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        versions.append((path, at))
    if not settings.kafka.bootstrap:
        ensure_running(kafka_service(settings))
    if not settings.catalog.url:
        ensure_running(mariadb_service(settings))
    if settings.catalog.relay:
        ensure_running(relay_service(settings))
    for path, at in versions:
        load_file(settings, path, at=at)
    if settings.catalog.relay:
        wait_relayed(settings)
    first_prices = {r["item_id"]: r["price"] for r in cat.first}
    changed_prices = sum(r["price"] != first_prices[r["item_id"]] for r in cat.second)
    return DemoCatalogue(
        items=len(cat.first),
        unknown_items=len(cat.unknown),
        unknown_event_share=cat.unknown_events / cat.item_events if cat.item_events else 0.0,
        changed_brands=len(cat.second) - changed_prices,
        changed_prices=changed_prices,
        first=versions[0],
        second=versions[1],
    )


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
            cols = [c.name for c in f.columns]
            rows, checksum = client.query(f"SELECT count(), {row_checksum(cols)} FROM {db}.{f.name}").result_rows[0]
            out[f.name] = (int(rows), int(checksum))
    return out
