"""The raw-event archive's layout, `<archive>/dt=YYYY-MM-DD/hour=HH/part-*` (JSON lines), and
what can be known from its listing alone: days and hours present, gaps, a fingerprint; and
the catalogue's change history beside it, `<lake>/catalog/dt=YYYY-MM-DD/part-*` (by change day).
The stream job writes it (streaming/job.py, partitioned by these keys); batch/archive.py
reads it with Spark, dq_checks/sources.py with ClickHouse."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

from common.errors import PlatformError
from common.settings import Settings

DAY_KEY, HOUR_KEY = "dt", "hour"  # the partition keys: the event time's UTC day and hour
PARTS = "part-*"  # committed files; in-progress ones start with a dot


def _day(root: Path, day: date) -> Path:
    return root / f"{DAY_KEY}={day.isoformat()}"


def day_dir(settings: Settings, day: date) -> Path:
    return _day(settings.archive_dir, day)


def hour_dir(settings: Settings, day: date, hour: int) -> Path:
    return day_dir(settings, day) / f"{HOUR_KEY}={hour:02d}"


def event_dir(root: Path, event_time_ms: int) -> Path:
    """The folder an event with this time goes to under the archive root `root` (for writers
    of the layout other than the stream: tests and benchmarks)."""
    t = datetime.fromtimestamp(event_time_ms / 1000, UTC)
    return _day(root, t.date()) / f"{HOUR_KEY}={t.hour:02d}"


def day_parts(settings: Settings, day: date) -> str:
    """A glob of the day's part files (Spark, DuckDB)."""
    return str(day_dir(settings, day) / f"{HOUR_KEY}=*" / PARTS)


def days_parts(settings: Settings, days: list[date]) -> str:
    """One glob of these days' part files, with {a,b} alternatives (ClickHouse `file()`)."""
    dts = ",".join(d.isoformat() for d in days)
    return f"{settings.archive_dir}/{DAY_KEY}={{{dts}}}/{HOUR_KEY}=*/{PARTS}"


def part_files(settings: Settings, day: date) -> list[Path]:
    """The day's committed part files, sorted."""
    return sorted(day_dir(settings, day).glob(f"{HOUR_KEY}=*/{PARTS}"))


def is_archived(settings: Settings, day: date) -> bool:
    return day_dir(settings, day).is_dir()


def archived_days(settings: Settings) -> list[date]:
    """Every day with an archive folder, oldest first."""
    return sorted(date.fromisoformat(p.name.split("=", 1)[1]) for p in settings.archive_dir.glob(f"{DAY_KEY}=*"))


def hours(settings: Settings, day: date) -> list[int]:
    """The hours of the day with committed part files."""
    folder = day_dir(settings, day)
    return sorted(int(p.name.split("=", 1)[1]) for p in folder.glob(f"{HOUR_KEY}=*") if any(p.glob(PARTS)))


def missing_hours(settings: Settings, day: date) -> list[str]:
    """Hours without archived events between the day's first and last archived hour."""
    present = hours(settings, day)
    if not present:
        return []
    return [f"{day.isoformat()} {h:02d}:00" for h in range(present[0], present[-1] + 1) if h not in present]


def missing_days(settings: Settings, days: list[date]) -> list[str]:
    """Those of `days` without an archive once it had begun: before its first day there was no history."""
    archived = archived_days(settings)
    return [d.isoformat() for d in days if archived and archived[0] <= d and not is_archived(settings, d)]


def fingerprint(settings: Settings, day: date) -> str:
    """A digest of the day's part files (name, size, mtime): it changes when they do."""
    folder = day_dir(settings, day)
    h = hashlib.sha256()
    for p in part_files(settings, day):
        st = p.stat()
        h.update(f"{p.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def require_ended(day: date, option: str = "--date") -> None:
    """Batch days must not lie ahead: a future day (UTC) has no archive yet."""
    if day > datetime.now(UTC).date():
        raise PlatformError(f"{option} {day} is in the future", "pick a day that has ended")


def catalog_history_parts(settings: Settings) -> str | None:
    """A glob of the catalogue change history's part files, or None while it has none."""
    root = settings.catalog_history_dir
    return str(root / f"{DAY_KEY}=*" / PARTS) if any(root.glob(f"{DAY_KEY}=*/{PARTS}")) else None
