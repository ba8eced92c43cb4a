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


@dataclass
class PipelineResult:
    summary: RunSummary
    events: list[dict]  # parsed input, in source order
    tables: dict[str, list[tuple[Any, ...]]]
    online: dict[str, dict[str, str]]
    settings: Settings


def run_pipeline(settings: Settings, fmt: str, path: Path) -> PipelineResult:
    stage = stage_files(fmt, [path], settings.staging_dir / "test.csv", settings.dead_letter_dir / "parse")
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
    # every stream feature's table, and the tiles under category_clicks_1h's view
    for t in ("category_clicks_1h_tiles", *(f.name for f in load_features(settings).stream)):
        final = "" if t == "category_clicks_1h" else " FINAL"
        tables[t] = ch.query(f"SELECT * FROM features.{t}_stream{final}").result_rows
    with path.open() as fh:
        events = [e for _, e, _, _ in read_lines(fmt, fh, path.stem) if e is not None]
    return PipelineResult(summary, events, tables, online, settings)


def ms(dt) -> int:
    """Epoch ms of a ClickHouse DateTime64 value (returned naive, in UTC)."""
    from datetime import UTC

    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)
