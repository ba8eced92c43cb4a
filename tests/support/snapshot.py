"""Committed snapshot files under tests/snapshots/: a test compares its text with the file
exactly. `UPDATE_SNAPSHOTS=1 .venv/bin/pytest -q tests/unit/test_snapshots.py` rewrites them
(and deletes the ones nothing writes any more); review the diff and commit it."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "snapshots"
REFRESH = "make snapshots"  # UPDATE_SNAPSHOTS=1 .venv/bin/pytest -q tests/unit/test_snapshots.py


def updating() -> bool:
    return os.environ.get("UPDATE_SNAPSHOTS") == "1"


def assert_snapshot(name: str, text: str) -> None:
    """text equals tests/snapshots/<name>; when updating, the file becomes text."""
    path = ROOT / name
    if updating():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        return
    if not path.is_file():
        pytest.fail(f"no snapshot tests/snapshots/{name}: write it with `{REFRESH}`, then commit it", pytrace=False)
    committed = path.read_text()
    if committed != text:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"tests/snapshots/{name} (committed)",
                f"tests/snapshots/{name} (now)",
            )
        )
        pytest.fail(
            f"tests/snapshots/{name} differs from what the code compiles now:\n{diff}\n"
            f"If the change is intended, rewrite the snapshots with `{REFRESH}` and commit them.",
            pytrace=False,
        )


def assert_only(folder: str, names: set[str]) -> None:
    """tests/snapshots/<folder> holds exactly these files; when updating, the others are deleted."""
    stale = sorted(p.name for p in (ROOT / folder).glob("*") if p.name not in names)
    if updating():
        for name in stale:
            (ROOT / folder / name).unlink()
    elif stale:
        pytest.fail(f"tests/snapshots/{folder} has snapshots nothing writes: {stale}; run `{REFRESH}`", pytrace=False)
