"""What a stored value's status is, from the time that dates it (Feast's statuses:
STALE is Feast's OUTSIDE_MAX_AGE)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

Status = Literal["PRESENT", "NOT_FOUND", "STALE"]


@dataclass(frozen=True)
class Bounds:
    """The rules' cut-offs at one instant: stream values dated before stream_cutoff_ms and batch
    values as of a day before batch_cutoff (YYYY-MM-DD) are stale."""

    stream_cutoff_ms: float
    batch_cutoff: str

    @classmethod
    def at(cls, now_s: float, stream_max_age_s: float, batch_max_age_days: int) -> Bounds:
        today = datetime.fromtimestamp(now_s, UTC).date()
        return cls((now_s - stream_max_age_s) * 1000, (today - timedelta(days=batch_max_age_days)).isoformat())


def stream_status(event_ms: str | None, bounds: Bounds) -> Status:
    """STALE when the value's event time is older than the stream's bound, or unknown (a
    value written before the store kept its event time)."""
    return "PRESENT" if event_ms is not None and int(event_ms) >= bounds.stream_cutoff_ms else "STALE"


def batch_status(as_of: str | None, published: str | None, bounds: Bounds) -> Status:
    """STALE when the value is as of a day before the newest day published for the feature
    (the batch has since run and no longer gives this user a value), before the batch bound
    (the batch layer is behind), or unknown. ISO days compare as strings."""
    if as_of is None or as_of < bounds.batch_cutoff or (published is not None and as_of < published):
        return "STALE"
    return "PRESENT"
