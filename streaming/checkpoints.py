"""Where a pipeline's checkpoints are, and which one to resume from."""

from __future__ import annotations

from pathlib import Path

from common.settings import Settings


def latest_checkpoint(settings: Settings, pipeline: str) -> str | None:
    """The newest completed checkpoint of a pipeline (local checkpoint dirs only)."""
    uri = settings.checkpoint_uri
    if not uri.startswith("file:"):
        return None
    root = Path(uri.removeprefix("file://")) / pipeline
    done = [m.parent for m in root.glob("*/chk-*/_metadata")]
    if not done:
        return None
    newest = max(done, key=lambda p: (p.stat().st_mtime, int(p.name.split("-")[1])))
    return newest.as_uri()


def savepoint_on_disk(target: str, job_id: str, since: float) -> str | None:
    """A complete savepoint of the job written under a local `target` after `since` (epoch
    seconds): Flink names it savepoint-<first 6 of the job id>-<random> and writes its
    `_metadata` last. None when there is none, or the target is not a local path."""
    if not target.startswith("file:"):
        return None
    root = Path(target.removeprefix("file://").removeprefix("file:"))
    done = [
        m.parent
        for m in root.glob(f"savepoint-{job_id[:6]}-*/_metadata")
        if m.stat().st_mtime >= since - 1  # coarse file clocks
    ]
    return max(done, key=lambda p: p.stat().st_mtime).as_uri() if done else None
