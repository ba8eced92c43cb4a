"""Per-user state features over D-6..D without rescanning 7 days for every D: each day's
events are reduced once to those that can still decide the feature (batch/sql.py reduce_sql),
kept cached while a backfill needs them, and the feature query runs over 7 reduced days."""

from __future__ import annotations

from datetime import date
from functools import reduce

from features.definitions import Feature


class ReducedDays:
    """Cache of reduced days, per feature, over `source` (the backfill's loaded range)."""

    def __init__(self, spark, source) -> None:
        self.spark, self.source = spark, source
        self.frames: dict[tuple[str, date], object] = {}

    def events(self, f: Feature, days: list[date]):
        """The reduced events of these days for feature f, as one DataFrame."""
        from batch.reconcile import events_of
        from batch.sql import reduce_sql

        for key in [k for k in self.frames if k[0] == f.name and k[1] < days[0]]:
            self.frames.pop(key).unpersist()  # type: ignore[attr-defined]
        parts = []
        for d in days:
            if (f.name, d) not in self.frames:
                events_of(self.spark, None, [d], self.source).createOrReplaceTempView("events")  # type: ignore[arg-type]
                self.frames[(f.name, d)] = self.spark.sql(reduce_sql(f)).drop("_rn").cache()
            parts.append(self.frames[(f.name, d)])
        return reduce(lambda a, b: a.unionByName(b), parts)
