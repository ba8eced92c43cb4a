"""Generated events written straight into the raw-event archive's layout (common/archive.py,
JSON lines with source position, late flag and arrival time), as the stream job would write them.
Going through Flink would take minutes per million events on 2 cores, and this benchmark
measures the batch layer, so it skips the stream."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import orjson

from common.archive import event_dir
from features.generator import GeneratorConfig, generate

WATERMARK_DELAY_MS = 3000  # the stream's default: behind max seen - 3 s is late


def write_generated_archive(archive: Path, cfg: GeneratorConfig, count: int) -> int:
    """Write `count` generated events under `archive`; returns the number of late ones."""
    files: dict[Path, IO[bytes]] = {}
    max_seen, late = 0, 0
    for off, e in enumerate(generate(cfg, count)):
        t = e["event_time"]
        is_late = t < max_seen - WATERMARK_DELAY_MS
        late += is_late
        max_seen = max(max_seen, t)
        folder = event_dir(archive, t)
        fh = files.get(folder)
        if fh is None:
            folder.mkdir(parents=True, exist_ok=True)
            fh = files[folder] = (folder / "part-0-0").open("ab", buffering=1 << 20)
        # arrival: in source order, 100 ms after the newest event time seen so far
        row = {"src_part": 0, "src_off": off, **e, "late": is_late, "arrived_at": max_seen + 100}
        fh.write(orjson.dumps(row) + b"\n")
    for fh in files.values():
        fh.close()
    return late
