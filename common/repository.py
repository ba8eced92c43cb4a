"""The one way to get the features a deployment computes: the repository the settings name
(LAMBDA_FEATURES_FEATURE_REPO), read and checked once per change of its files."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from common.errors import PlatformError
from common.settings import ENV_PREFIX, Settings
from features.repository import FeatureRepository, RepositoryError, check_repository, read_repository

SETTING = ENV_PREFIX + "FEATURE_REPO"


def _stamp(path: Path) -> tuple[tuple[str, int], ...]:
    """The repository's .py files with their change times: a new stamp reads it again."""
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return tuple((str(p), p.stat().st_mtime_ns) for p in files if p.exists())


@lru_cache(maxsize=16)
def _load(path: Path | None, stamp: tuple[tuple[str, int], ...]) -> FeatureRepository:
    repo = read_repository(path)
    check_repository(repo)
    return repo


def load_features(settings: Settings) -> FeatureRepository:
    """The settings' feature repository (the shipped e-commerce one when none is set), checked:
    a PlatformError names the repository, the feature and the field of every problem."""
    path = settings.feature_repo
    if path is not None:
        path = path.expanduser().resolve()
        if not path.exists():
            raise PlatformError(f"{SETTING} points at {path}, which does not exist", "fix or unset it")
    try:
        return _load(path, _stamp(path) if path else ())
    except RepositoryError as e:
        raise PlatformError(f"feature repository {e.what}", e.fix or f"fix the repository {SETTING} names") from None
