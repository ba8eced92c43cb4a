"""Counts of what the stream job writes to files: dead letters by reason, archived and late events,
read as their files grow (each byte once), so a scrape costs only the new data."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

KEEP_S = 24 * 3600  # a file untouched this long is done; a folder holding only such files is skipped


@dataclass
class _Folder:
    mtime: float
    files: dict[str, int] = field(default_factory=dict)  # name -> bytes consumed (whole lines)


class NewLines:
    """Complete lines added to the files `folders/files` under root since the last call. The
    first call only takes note of what is there; so do later calls of files older than KEEP_S
    when they first appear (a file committed a day after it was written is not counted)."""

    def __init__(self, root: Path, folders: str, files: str) -> None:
        self.root, self.folders, self.files = root, folders, files
        self.state: dict[Path, _Folder] = {}
        self.started = False

    def _dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [self.root] if not self.folders else [d for d in self.root.glob(self.folders) if d.is_dir()]

    def poll(self) -> Iterator[bytes]:
        horizon = time.time() - KEEP_S
        first, self.started = not self.started, True
        for d in self._dirs():
            try:
                mtime = d.stat().st_mtime
            except FileNotFoundError:
                continue
            folder = self.state.setdefault(d, _Folder(-1.0))
            if folder.mtime == mtime and not folder.files:
                continue
            folder.mtime = mtime
            for f in d.glob(self.files):
                if f.name.startswith("."):  # in-progress files of Flink's file sink
                    continue
                try:
                    st = f.stat()
                except FileNotFoundError:
                    continue
                done = folder.files.get(f.name)
                if done is None:
                    if first or st.st_mtime < horizon:
                        folder.files[f.name] = st.st_size
                        continue
                    done = 0
                if st.st_size > done:
                    chunk = _read(f, done, st.st_size)
                    folder.files[f.name] = done + len(chunk)
                    if chunk:
                        yield chunk
                if st.st_mtime < horizon and folder.files[f.name] >= st.st_size:
                    del folder.files[f.name]


def _read(path: Path, start: int, end: int) -> bytes:
    """The whole lines between start and end."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.pread(fd, end - start, start)
    finally:
        os.close(fd)
    return data[: data.rfind(b"\n") + 1]


class StreamOutputs:
    """Running totals of dead letters by stage and reason, and of the events (late ones too) in the archive."""

    def __init__(self, archive_dir: Path, dead_letter_dir: Path) -> None:
        self.archive = NewLines(archive_dir, "dt=*/hour=*", "part-*")
        self.rejected = NewLines(dead_letter_dir / "stream", "", "part-*")
        self.unparseable = NewLines(dead_letter_dir / "parse", "", "*.jsonl")
        self.archived = 0
        self.late = 0
        self.dead_letters: dict[tuple[str, str], int] = {}

    def poll(self) -> None:
        for chunk in self.archive.poll():
            self.archived += chunk.count(b"\n")
            self.late += chunk.count(b'"late":true')
        for chunk in self.rejected.poll():
            for line in chunk.splitlines():
                reason = orjson.loads(line).get("reason") or "unknown"
                self.dead_letters[("stream", reason)] = self.dead_letters.get(("stream", reason), 0) + 1
        for chunk in self.unparseable.poll():  # free-text reasons: one label value keeps the series few
            key = ("parse", "unparseable")
            self.dead_letters[key] = self.dead_letters.get(key, 0) + chunk.count(b"\n")
