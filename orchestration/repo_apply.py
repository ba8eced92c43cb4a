"""`lambda-features apply`: make the platform run the feature repository, as its plan says.
ClickHouse first (a changed feature's tables are dropped and rebuilt, a removed one's dropped
when asked), then the stream job (a savepoint redeploy through streaming/deployment.py), then
the history of new and changed features from the archive (the batch layer's backfill), and last
the registry, so an apply that failed half-way is planned and applied again."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from common import lake, registry
from common.clickhouse import get_client
from common.errors import PlatformError
from common.repository import load_features
from common.settings import Settings
from features.repository import fingerprint
from orchestration.repo_plan import REPO, Plan, cli_env
from tiering import manifest
from warehouse.schema import create_tables
from warehouse.tables import objects_of

log = logging.getLogger(__name__)


def _drop(settings: Settings, objects: list[str], features: list[str]) -> None:
    """Drop these ClickHouse objects, the dropped tables' cold days from the tiering manifest
    (their cold views go too), the features' reconciled days and their lake folders."""
    client = get_client(settings)
    db = settings.clickhouse.database
    tables = []
    for o in objects:
        kind, name = o.split(" ", 1)
        client.command(f"DROP {kind.upper()} IF EXISTS {name}")
        tables += [name.split(".", 1)[1]] if kind == "table" else []
    if tables:
        manifest.create(settings)
        listed = ", ".join(f"'{t}'" for t in tables)
        client.command(f"DELETE FROM {db}.{manifest.TABLE} WHERE `table` IN ({listed})")
    for name in features:
        client.command(f"DELETE FROM {db}.reconciled_days WHERE feature = '{name}'")
        for folder in (lake.feature_dir(settings, name), lake.partials_dir(settings, name)):
            shutil.rmtree(folder, ignore_errors=True)


def _forget_online(settings: Settings, names: list[str]) -> None:
    """Remove these features' fields from every user's hash: a changed feature's old values
    must not be served as new ones, nor a removed feature's at all."""
    from common.redis_store import get_redis

    if not names:
        return
    redis = get_redis(settings)
    fields = [x for n in names for x in (n, f"{n}:event_time", f"{n}:as_of")]
    pipe = redis.pipeline(transaction=False)
    for n, key in enumerate(redis.scan_iter(f"{settings.redis.key_prefix}*", count=1000), start=1):
        pipe.hdel(key, *fields)
        if n % 5000 == 0:
            pipe.execute()
    pipe.execute()


def _backfill(settings: Settings, plan: Plan, say: Callable[[str], None]) -> None:
    """The batch layer's backfill over the plan's range: every archived day of it is recomputed
    and replaces itself (new features get their history, the others the same rows again)."""
    assert plan.backfill_range
    first, last = plan.backfill_range
    repo = load_features(settings)
    online = any(f.layer == "batch" and f.online_column for f in repo.features if f.name in plan.backfill)
    args = ["batch", "backfill", "--start", first.isoformat(), "--end", last.isoformat()]
    args += [] if online else ["--no-publish"]
    say(f"backfill: lambda-features {' '.join(args)}")
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO,
        env=cli_env(settings),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = " ".join((proc.stdout + proc.stderr).strip().splitlines()[-6:])
        raise PlatformError(f"the backfill failed: {tail}", "fix its cause and run apply again (it re-plans)")


def apply(settings: Settings, plan: Plan, say: Callable[[str], None] = log.info) -> None:
    """Carry out the plan (build_plan's, for these settings)."""
    repo = load_features(settings)
    reg = registry.read(settings)
    recomputed = plan.changed
    gone = plan.removed if plan.drop_removed else []
    if plan.drop:
        say(f"ClickHouse: dropping {len(plan.drop)} object(s)")
        _drop(settings, plan.drop, recomputed + gone)
    if [n for n in recomputed + plan.removed if reg.features[n].online]:
        _forget_online(settings, [n for n in recomputed + plan.removed if reg.features[n].online])
    create_tables(settings)
    say(f"ClickHouse: {len(plan.create)} object(s) created, every view rebuilt")
    if plan.redeploy:
        from streaming.deployment import StreamDeployment

        deployment = StreamDeployment(settings)
        st = deployment.status(with_lag=False)
        # a local job is this home's only when this home deployed it: another home's job may
        # answer on the same REST port
        if st.running and (settings.stream.jobmanager or st.deployed_fingerprint is not None):
            result = deployment.deploy(fresh=plan.fresh)
            say(f"stream job: {result.action} (savepoint {result.savepoint or 'none'})")
        else:
            if plan.fresh:
                deployment.fresh_next()
            say(
                "stream job: not running; its next deploy runs the new definition"
                + (" with no state" if plan.fresh else "")
            )
    if plan.backfill and plan.backfill_days:
        _backfill(settings, plan, say)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    deployed = {}
    for f in repo.features:
        tables, views = objects_of(f)
        old = reg.features.get(f.name)
        keep = old is not None and f.name not in plan.changed
        deployed[f.name] = registry.DeployedFeature(
            fingerprint(f),
            f.layer,
            tables,
            views,
            f.online_column is not None,
            old.applied_at if keep else now,  # type: ignore[union-attr]
        )
    kept = {n: reg.features[n] for n in plan.removed if not plan.drop_removed}
    retired = {n: d for n, d in reg.features.items() if d.retired and n not in deployed}
    for d in kept.values():
        d.retired = True
    registry.write(
        settings,
        registry.Registry(
            features=deployed | retired | kept,
            repository=repo.source,
            stream_fingerprint=plan.stream_fingerprint,
            operators=plan.operators,
            assets=plan.assets,
            checks=plan.checks,
            applied_at=now,
        ),
    )
    if kept:
        say(f"kept the tables of removed feature(s) {', '.join(kept)}")
    say(f"registry: {registry.path(settings)}")
