"""Turn replay inputs into one staged CSV of canonical events the stream job reads.

Each line keeps its source position (file index, line number) for ties in event time;
lines that cannot be parsed go to the dead-letter folder with the reason.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from common.errors import PlatformError
from features.adapters import FORMATS, Attributes, Event, read_lines
from features.events import EVENT_FIELDS

NULL = "\\N"  # the csv.null-literal of the staged files


@dataclass
class StageResult:
    path: Path
    events: int = 0
    dead_letters: int = 0
    dead_letter_path: Path | None = None
    files: list[str] = field(default_factory=list)


class StagedWriter:
    """Writes canonical events as the CSV the stream job's file source expects."""

    def __init__(self, path: Path, attributes: Attributes = ()) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fields = (*EVENT_FIELDS, *(a.name for a in attributes))  # the order of the job's source columns
        self._fh = path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._fh, lineterminator="\n")
        self.count = 0

    def write(self, part: int, offset: int, event: Event) -> None:
        row = [part, offset]
        for k in self.fields:
            v = event.get(k)
            row.append(NULL if v is None else str(v).lower() if isinstance(v, bool) else v)
        self._csv.writerow(row)
        self.count += 1

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> StagedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stage_files(
    fmt: str, paths: Iterable[Path], staged: Path, dead_dir: Path, attributes: Attributes = ()
) -> StageResult:
    """Parse every input file in order into `staged` (with the repository's event attributes);
    parse failures go to `dead_dir`."""
    if fmt not in FORMATS:
        raise PlatformError(f"unknown format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
    paths = list(paths)
    for p in paths:
        if not p.is_file():
            raise PlatformError(f"input file not found: {p}", "check the path")
    dead_dir.mkdir(parents=True, exist_ok=True)
    result = StageResult(staged, dead_letter_path=dead_dir / f"{staged.stem}.parse.jsonl")
    with StagedWriter(staged, attributes) as out, result.dead_letter_path.open("wb") as dead:
        for index, p in enumerate(paths):
            result.files.append(str(p))
            with p.open(encoding="utf-8", errors="replace") as fh:
                for line_no, event, raw, error in read_lines(fmt, fh, p.stem, attributes):
                    if event is None:
                        dead.write(
                            orjson.dumps(
                                {
                                    "source": str(p),
                                    "line": line_no,
                                    "reason": error,
                                    "record": raw.rstrip("\n"),
                                    # the position the line would have had, for completeness checks
                                    "src_part": index,
                                    "src_off": line_no,
                                }
                            )
                            + b"\n"
                        )
                        result.dead_letters += 1
                    else:
                        out.write(index, line_no, event)
        result.events = out.count
    return result
