"""The registry: what `lambda-features apply` last deployed, kept as one JSON file under
$LAMBDA_FEATURES_HOME/registry/ (each feature's definition fingerprint and tables, the stream
job's definition and its features' plan-node signatures, the Dagster assets and checks). `plan`
compares the repository with it."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from common.errors import PlatformError
from common.settings import Settings


@dataclass
class DeployedFeature:
    fingerprint: str
    layer: str
    tables: list[str]  # ClickHouse tables holding its rows
    views: list[str]  # ClickHouse views over them
    online: bool = False
    applied_at: str = ""
    # removed from the repository with its tables kept: added again, it is recomputed in full
    retired: bool = False


@dataclass
class Registry:
    features: dict[str, DeployedFeature] = field(default_factory=dict)
    repository: str = ""
    stream_fingerprint: str = ""
    operators: dict[str, list[str]] = field(default_factory=dict)  # feature -> its own nodes' signatures in the plan
    assets: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    applied_at: str = ""

    @property
    def empty(self) -> bool:
        return not self.applied_at


def path(settings: Settings) -> Path:
    return settings.home / "registry" / "features.json"


def read(settings: Settings) -> Registry:
    """The last applied state; empty when nothing was applied yet."""
    p = path(settings)
    if not p.is_file():
        return Registry()
    try:
        data = orjson.loads(p.read_bytes())
        data["features"] = {n: DeployedFeature(**d) for n, d in data["features"].items()}
        return Registry(**data)
    except (orjson.JSONDecodeError, KeyError, TypeError) as e:
        raise PlatformError(
            f"the registry {p} is unreadable: {e}", "restore it, or remove it to plan from nothing"
        ) from None


def write(settings: Settings, registry: Registry) -> None:
    """Replace the registry at once (a crash leaves the old one or the new one)."""
    p = path(settings)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(asdict(registry), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.replace(tmp, p)
