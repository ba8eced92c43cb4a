"""Rebuilding the online store (Redis) after it lost data, over both layers that write it: the
stream features from their changelog topics (by the online loader), the 30-day features from
the lake (`batch publish` of the newest day published). It lives above the streaming and
batch layers because it drives both; the loader, which notices a loss by itself, reaches the
batch part through the `on_store_lost` hook its owner passes down (`republish_batch`)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date

import orjson

from common.errors import PlatformError
from common.redis_store import get_redis, rebuild_request_key
from common.repository import load_features
from common.settings import Settings

log = logging.getLogger(__name__)
TAKE_WAIT_S = 5.0  # a running online loader takes a request within about STORE_CHECK_S


@dataclass
class RebuildReport:
    stream: list[str] = field(default_factory=list)  # the stream features rebuilt
    by: str = ""  # the running online loader, or this process
    seconds: float = 0.0
    keys: int = 0  # users' keys the stream part rewrote
    batch: dict[str, date] = field(default_factory=dict)  # 30-day feature -> as-of day republished


def republish_batch(settings: Settings, names: list[str] | None = None) -> dict[str, date]:
    """The 30-day features' part of a rebuild: the newest day published of each, again."""
    from batch.publish import republish_online

    published = republish_online(settings, names)
    if published:
        log.info("republished to the online store: %s", ", ".join(f"{n} as of {d}" for n, d in published.items()))
    else:
        log.info("no 30-day feature was published before: nothing to republish")
    return published


def rebuild_online(settings: Settings, names: list[str] | None = None, timeout_s: float = 600) -> RebuildReport:
    """Rebuild these features (all online features when None) in the online store. The stream
    features go to the running online loader as a request, so no second writer races it; with
    no loader running, an online loader runs here until it has read their topics again."""
    repo = load_features(settings)
    online_stream = [f.name for f in repo.stream if f.online_column is not None]
    batch = [f.name for f in repo.batch]
    unknown = sorted(set(names or ()) - set(online_stream) - set(batch))
    if unknown:
        raise PlatformError(
            f"no online feature {', '.join(unknown)}", f"online features: {', '.join(online_stream + batch)}"
        )
    report = RebuildReport(stream=[n for n in online_stream if names is None or n in names])
    if report.stream:
        _rebuild_stream(settings, report, [] if names is None else report.stream, timeout_s)
    wanted_batch = [n for n in batch if names is None or n in names]
    if wanted_batch:
        report.batch = republish_batch(settings, wanted_batch)
    return report


def _rebuild_stream(settings: Settings, report: RebuildReport, names: list[str], timeout_s: float) -> None:
    redis = get_redis(settings)
    key = rebuild_request_key(settings)
    asked = time.time()
    redis.set(key, orjson.dumps(names))
    deadline = time.monotonic() + TAKE_WAIT_S
    while redis.exists(key) and time.monotonic() < deadline:
        time.sleep(0.2)
    if redis.getdel(key) is None:  # taken
        report.by = "the running online loader"
        done = _wait_done(redis, key, asked, timeout_s)
    else:
        report.by = "an online loader of this command (none was running)"
        redis.set(key, orjson.dumps(names))
        done = _load_until_rebuilt(settings, timeout_s)
    report.seconds, report.keys = done["seconds"], done["keys"]


def _wait_done(redis, key: str, asked: float, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        raw = redis.get(key + ":done")
        if raw and (done := orjson.loads(raw))["at"] >= asked:
            return done
        time.sleep(0.5)
    raise PlatformError(
        f"the online loader took the rebuild request but did not finish within {timeout_s:.0f}s",
        "see the loader's log; lf_online_rebuilding is 1 while it reads the topics again",
    )


def _load_until_rebuilt(settings: Settings, timeout_s: float) -> dict:
    from streaming.job import compiled_queries
    from streaming.loader import OnlineLoader

    deadline = time.monotonic() + timeout_s
    loader = OnlineLoader(
        settings,
        [q for _, q in compiled_queries(settings)],
        should_stop=lambda: bool(loader.rebuilt) or time.monotonic() > deadline,
    )
    loader.run()
    if not loader.rebuilt:
        raise PlatformError(f"the rebuild did not finish within {timeout_s:.0f}s")
    return loader.rebuilt[-1]
