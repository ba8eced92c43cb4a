"""Run the real stream pipeline on a file and read back every store, for the tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.clickhouse import get_client
from common.repository import load_features
from common.settings import Settings
from features.adapters import read_lines
from streaming.job import FileSource
from streaming.runner import RunSummary, run_job
from streaming.staging import stage_files
from warehouse.tables import hop_of


@dataclass
class PipelineResult:
    summary: RunSummary
    events: list[dict]  # parsed input, in source order
    tables: dict[str, list[tuple[Any, ...]]]
    online: dict[str, dict[str, str]]
    settings: Settings


def run_pipeline(settings: Settings, fmt: str, path: Path) -> PipelineResult:
    attributes = load_features(settings).event_attributes
    stage = stage_files(fmt, [path], settings.staging_dir / "test.csv", settings.dead_letter_dir / "parse", attributes)
    from common.redis_store import get_redis
    from common.services import local_services

    try:
        summary = run_job(settings, FileSource(stage.path), stage, keep_services=True)
        r = get_redis(settings)
        online = {k: r.hgetall(k) for k in r.scan_iter("user:*", count=1000)}
    finally:
        for svc in local_services(settings):
            svc.stop()
    ch = get_client(settings)
    tables = {}
    # every stream feature's table, and the tiles under the views of sliding windows
    for f in load_features(settings).stream:
        tiled = hop_of(f) is not None
        if tiled:
            tables[f"{f.name}_tiles"] = ch.query(f"SELECT * FROM features.{f.name}_tiles_stream FINAL").result_rows
        final = "" if tiled else " FINAL"
        tables[f.name] = ch.query(f"SELECT * FROM features.{f.name}_stream{final}").result_rows
    with path.open() as fh:
        events = [e for _, e, _, _ in read_lines(fmt, fh, path.stem, attributes) if e is not None]
    return PipelineResult(summary, events, tables, online, settings)


def ms(dt) -> int:
    """Epoch ms of a ClickHouse DateTime64 value (returned naive, in UTC)."""
    from datetime import UTC

    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)
