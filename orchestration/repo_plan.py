"""`lambda-features plan`: what applying the feature repository would change, against the
registry of what was last applied. Both engines check the repository first (each in a process
of its own), and the job's compiled plan says which features' state a savepoint restores."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson

from common import archive, registry
from common.errors import PlatformError
from common.repository import load_features
from common.settings import Settings
from features.repository import FeatureRepository, fingerprint
from warehouse.tables import objects_of

REPO = Path(__file__).resolve().parent.parent
ENGINES = {"flink": "streaming.validate", "spark": "batch.validate"}


@dataclass
class Plan:
    repository: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # recomputed in full under the same name
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    create: list[str] = field(default_factory=list)  # ClickHouse tables and views, "table db.t" / "view db.v"
    drop: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)  # a removed feature's tables, kept
    drop_removed: bool = False
    redeploy: bool = False  # the stream job's definition changed
    fresh: bool = False  # redeploy with no state: a savepoint would give a changed feature its old state
    stale: list[str] = field(default_factory=list)  # changed features whose operators keep their IDs
    keeps_state: list[str] = field(default_factory=list)
    starts_empty: list[str] = field(default_factory=list)  # unchanged, but Flink cannot map their state back
    drops_state: list[str] = field(default_factory=list)  # removed: their state is left behind in the savepoint
    backfill: list[str] = field(default_factory=list)  # features whose history the batch layer computes
    backfill_range: tuple[date, date] | None = None
    backfill_days: list[date] = field(default_factory=list)  # the archived days of the range
    assets_added: list[str] = field(default_factory=list)
    assets_removed: list[str] = field(default_factory=list)
    checks_added: list[str] = field(default_factory=list)
    checks_removed: list[str] = field(default_factory=list)
    stream_fingerprint: str = ""
    operators: dict[str, list[str]] = field(default_factory=dict)
    assets: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.redeploy or self.create or self.drop)

    def lines(self) -> list[str]:
        """The plan as the command prints it."""
        out = [f"feature repository: {self.repository}"]
        if not self.changes:
            return out + ["no changes: the platform runs this repository."]
        for sign, what, names in (
            ("+", "add", self.added),
            ("~", "recompute", self.changed),
            ("-", "remove", self.removed),
        ):
            out += [f"  {sign} {what} {n}" for n in names]
        if self.changed:
            out.append(
                "  changed features are recomputed in full under the same name: their tables are dropped and "
                "rebuilt, so no old row stays beside a new one; history older than the backfill is gone"
            )
        out += ["ClickHouse:"] + [f"  + create {o}" for o in self.create] + [f"  - drop {o}" for o in self.drop]
        out += [f"  = keep {o} (removed feature; apply --drop-removed drops it)" for o in self.keep]
        if self.redeploy:
            if self.fresh:
                out.append(
                    "stream job: redeploy with no state (a savepoint is taken, not restored): the changed "
                    f"feature(s) {', '.join(self.stale)} keep their operator IDs, so a restore would give them "
                    "their old state"
                )
            else:
                out.append("stream job: redeploy through a savepoint (a running job is stopped with one and restored)")
            out += [f"  state kept: {', '.join(self.keeps_state)}"] if self.keeps_state else []
            out += [f"  state starts empty (new or changed): {', '.join(self.new_state)}"] if self.new_state else []
            out += (
                [f"  state starts empty (its plan nodes changed upstream): {', '.join(self.starts_empty)}"]
                if self.starts_empty
                else []
            )
            out += (
                [f"  state dropped (allowNonRestoredState): {', '.join(self.drops_state)}"] if self.drops_state else []
            )
        else:
            out.append("stream job: unchanged")
        if self.backfill and self.backfill_range:
            first, last = self.backfill_range
            out.append(
                f"backfill: {first}..{last} ({len(self.backfill_days)} archived day(s)) for {', '.join(self.backfill)}"
            )
        out += (
            ["Dagster:"]
            + [f"  + asset {a}" for a in self.assets_added]
            + [f"  - asset {a}" for a in self.assets_removed]
        )
        out += [f"  + check {c}" for c in self.checks_added] + [f"  - check {c}" for c in self.checks_removed]
        return out

    @property
    def new_state(self) -> list[str]:
        return [n for n in (*self.added, *self.changed) if n in self.operators]


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment of a platform process with these settings' home and repository."""
    env = dict(os.environ) | {"LAMBDA_FEATURES_HOME": str(settings.home)}
    if settings.feature_repo:
        env["LAMBDA_FEATURES_FEATURE_REPO"] = str(settings.feature_repo)
    return env


def run_engine_checks(settings: Settings, engines: tuple[str, ...] = tuple(ENGINES)) -> dict[str, dict]:
    """Each engine's check of the repository, in a process of its own (PyFlink's and PySpark's
    py4j bridges never share one): {engine: its JSON}."""
    out = {}
    for engine in engines:
        module = ENGINES[engine]
        proc = subprocess.run(
            [sys.executable, "-m", module],
            cwd=REPO,
            env=cli_env(settings),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
        if proc.returncode != 0 or not last:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise PlatformError(f"the {engine} check of the repository failed to run: {' '.join(tail)}")
        out[engine] = orjson.loads(last[0])
    return out


def engine_problems(checks: dict[str, dict]) -> list[str]:
    return [
        f"{feature}: {engine} rejects it: {msg}"
        for engine, c in checks.items()
        for feature, msg in c["problems"].items()
    ]


def dagster_keys(settings: Settings) -> tuple[list[str], list[str]]:
    """The asset keys and asset check keys the Dagster definitions of the repository hold."""
    from orchestration.definitions import build_definitions

    graph = build_definitions(settings).resolve_asset_graph()
    assets = sorted(k.to_user_string() for k in graph.get_all_asset_keys())
    checks = sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys)
    return assets, checks


def _objects(settings: Settings, names: list[str], repo: FeatureRepository, reg: registry.Registry) -> list[str]:
    db = settings.clickhouse.database
    out = []
    for n in names:
        if n in repo.names:
            tables, views = objects_of(repo.feature(n))
        else:
            tables, views = reg.features[n].tables, reg.features[n].views
        out += [f"table {db}.{t}" for t in tables] + [f"view {db}.{v}" for v in views]
    return out


def history(settings: Settings, today: date | None = None) -> tuple[tuple[date, date], list[date]]:
    """The backfill's range (BATCH__HISTORY_DAYS days up to yesterday) and its archived days."""
    today = today or datetime.now(UTC).date()
    last = today - timedelta(days=1)
    first = today - timedelta(days=settings.batch.history_days)
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    return (first, last), [d for d in days if archive.is_archived(settings, d)]


def build_plan(
    settings: Settings, drop_removed: bool = False, today: date | None = None, checks: dict[str, dict] | None = None
) -> Plan:
    """Compare the repository with the registry; raise a PlatformError when an engine rejects it.
    `checks`: the engines' results when already known (run_engine_checks' form)."""
    from streaming.deployment import definition_fingerprint

    repo = load_features(settings)
    reg = registry.read(settings)
    checks = checks or run_engine_checks(settings)
    problems = engine_problems(checks)
    if problems:
        raise PlatformError(
            f"the feature repository {repo.source} does not compile:\n    " + "\n    ".join(problems),
            "fix the filters and expressions named above",
        )
    plan = Plan(repo.source, drop_removed=drop_removed, operators=checks["flink"]["operators"])
    for f in repo.features:
        known = reg.features.get(f.name)
        if known is None:
            plan.added.append(f.name)
        elif known.fingerprint == fingerprint(f) and not known.retired:
            plan.unchanged.append(f.name)
        else:  # a retired feature's kept tables hold rows of its old definition
            plan.changed.append(f.name)
    plan.removed = [n for n, d in reg.features.items() if n not in repo.names and not d.retired]
    plan.create = _objects(settings, plan.added + plan.changed, repo, reg)
    removed = _objects(settings, plan.removed, repo, reg)
    # a changed feature's tables and cold views (with its cold days); its other views are rebuilt
    plan.drop = [o for o in _objects(settings, plan.changed, repo, reg) if o.startswith("table") or o.endswith("_cold")]
    plan.drop += removed if drop_removed else []
    plan.keep = [] if drop_removed else removed
    plan.stream_fingerprint = definition_fingerprint(settings)
    plan.redeploy = plan.stream_fingerprint != reg.stream_fingerprint
    for f in repo.stream:
        if f.name in plan.unchanged:
            before = set(reg.operators.get(f.name, []))
            now = set(plan.operators.get(f.name, []))
            (plan.keeps_state if now and now <= before else plan.starts_empty).append(f.name)
    plan.drops_state = [n for n in plan.removed if reg.features[n].layer == "stream"]
    plan.stale = [
        n
        for n in plan.changed
        if n in plan.operators and set(plan.operators[n]) <= set(reg.operators.get(n, [])) and plan.operators[n]
    ]
    if plan.stale:
        plan.fresh = True
        plan.starts_empty, plan.keeps_state = plan.starts_empty + plan.keeps_state, []
    if not reg.empty and not plan.redeploy:
        plan.starts_empty = []
    plan.backfill = plan.added + plan.changed
    if plan.backfill:
        plan.backfill_range, plan.backfill_days = history(settings, today)
    plan.assets, plan.checks = dagster_keys(settings)
    plan.assets_added = [a for a in plan.assets if a not in reg.assets]
    plan.assets_removed = [a for a in reg.assets if a not in plan.assets]
    plan.checks_added = [c for c in plan.checks if c not in reg.checks]
    plan.checks_removed = [c for c in reg.checks if c not in plan.checks]
    return plan
