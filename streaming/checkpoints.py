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
