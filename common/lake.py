"""The lake's layout under $LAMBDA_FEATURES_HOME/lake: one Parquet folder per feature and
day (`features/<name>/dt=D/`, `features/<name>/as_of=D/` for the 30-day features) and the
30-day features' daily partials (`partials/<name>/dt=D/`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from common.settings import Settings

DAY_KEY, AS_OF_KEY = "dt", "as_of"


def partition_dir(root: Path, key: str, day: date) -> Path:
    """A day's hive-style folder under `root`, `<key>=YYYY-MM-DD`, as Spark's partitionBy names it."""
    return root / f"{key}={day.isoformat()}"


def feature_dir(settings: Settings, name: str) -> Path:
    return settings.lake_features_dir / name


def feature_day_dir(settings: Settings, name: str, day: date) -> Path:
    """A streaming feature's rows of the day (windows starting on it, state as of its end)."""
    return partition_dir(feature_dir(settings, name), DAY_KEY, day)


def as_of_dir(settings: Settings, name: str, day: date) -> Path:
    """A 30-day feature's rows as of the day."""
    return partition_dir(feature_dir(settings, name), AS_OF_KEY, day)


def partials_dir(settings: Settings, name: str) -> Path:
    return settings.lake_partials_dir / name


def partial_dir(settings: Settings, name: str, day: date) -> Path:
    """A 30-day feature's partial aggregates of one day."""
    return partition_dir(partials_dir(settings, name), DAY_KEY, day)


def parquet_rows(folder: Path) -> int:
    """Rows written to a Parquet folder, from the files' footers (no Spark job)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in folder.glob("*.parquet"))
