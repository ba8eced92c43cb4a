"""A user's repository end to end, on real engines: apply it, replay events that carry its
event attribute, then change it (one feature removed, one changed, one added) and apply again,
which backfills from the archive. Stream, batch and an independent computation agree; the
changed feature holds only rows of its new definition; then nothing is left to plan."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from common import registry
from common.clickhouse import get_client
from common.services import local_services
from dq_checks import run_checks
from features.adapters import to_json
from features.generator import GeneratorConfig, generate
from orchestration.repo_plan import build_plan
from tests.conftest import cli, env_of, free_port
from tests.feature_repos import channels
from tests.support import reference
from tests.support.pipeline import ms

REPOS = Path(__file__).resolve().parents[1] / "feature_repos"
V1, V2 = REPOS / "channels", REPOS / "channels_v2.py"
DAY = datetime.now(UTC).date() - timedelta(days=1)  # inside the backfill's 30 days


def _events() -> list[dict]:
    """3,000 events over 100 minutes of yesterday, none late, each with a channel (or none) under `chan`."""
    start = int(datetime(DAY.year, DAY.month, DAY.day, 10, tzinfo=UTC).timestamp() * 1000)
    cfg = GeneratorConfig(seed=11, users=150, items=400, categories=12, events_per_second=0.5, late=0.0, start_ms=start)
    rng = np.random.default_rng(3)
    out = []
    for e in generate(cfg, 3000):
        chan = rng.choice(["app", "web", ""])
        out.append(e | {"channel": chan or None})
    return out


def _run(args: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> str:
    p = cli(args, env)
    out = p.communicate(timeout=900)[0].decode()
    assert p.returncode in ok, out[-4000:]
    return " ".join(out.split())


def _rows(settings, sql: str) -> list[tuple]:
    return [
        tuple(ms(v) if isinstance(v, datetime) else v for v in r) for r in get_client(settings).query(sql).result_rows
    ]


def test_plan_apply_replay_change_and_backfill(settings, tmp_path: Path):
    env = env_of(settings) | {
        "LAMBDA_FEATURES_FEATURE_REPO": str(V1),
        "LAMBDA_FEATURES_STREAM__REST_PORT": str(free_port()),
    }
    applied = _run(["apply", "--yes"], env)
    assert "+ add app_clicks_10m" in applied and "+ create table features.channel_clicks_30m_tiles_stream" in applied
    assert "stream job: not running" in applied and "applied" in applied

    events = _events()
    src = tmp_path / "events.jsonl"
    src.write_bytes(
        b"".join(to_json(e, channels.EVENT_ATTRIBUTES).replace(b'"channel"', b'"chan"') + b"\n" for e in events)
    )
    _run(["replay", "--format", "jsonl", str(src)], env)

    env |= {"LAMBDA_FEATURES_FEATURE_REPO": str(V2)}
    planned = _run(["plan"], env, ok=(2,))
    assert "- remove top_categories_10m" in planned and "~ recompute app_clicks_10m" in planned
    assert "+ add web_clicks_1h" in planned and "= keep table features.top_categories_10m_stream" in planned
    assert f"({1} archived day(s)) for web_clicks_1h, app_clicks_10m" in planned
    assert "- asset lake/top_categories_10m" in planned and "+ asset clickhouse/web_clicks_1h" in planned
    _run(["apply", "--yes"], env)

    ev = reference.accept(events)
    d = f"toDate(window_start) = '{DAY}'"
    # a filter on the attribute, after the change: only web clicks, the stream's old rows gone
    web = reference.tumble(ev, 600_000, lambda e: e["event_type"] == "click" and e["channel"] == "web")
    app = _rows(settings, f"SELECT user_id, window_start, clicks FROM features.app_clicks_10m_batch FINAL WHERE {d}")
    assert Counter(app) == Counter((u, w, n) for (u, w), n in web.items()) and app
    assert _rows(settings, "SELECT count() FROM features.app_clicks_10m_stream") == [(0,)]
    hour = reference.tumble(ev, 3_600_000, lambda e: e["event_type"] == "click" and e["channel"] == "web")
    added = _rows(settings, f"SELECT user_id, window_start, clicks FROM features.web_clicks_1h WHERE {d}")
    assert Counter(added) == Counter((u, w, n) for (u, w), n in hour.items())
    # grouped on the attribute, a hop of another size: stream = batch = reference
    hop = reference.hop(ev, 1_800_000, 600_000, lambda e: e["event_type"] == "click", key="channel")
    want = Counter((w, k, n) for (k, w), n in hop.items())
    for t in ("channel_clicks_30m_stream", "channel_clicks_30m_batch FINAL"):
        assert Counter(_rows(settings, f"SELECT window_start, channel, clicks FROM features.{t} WHERE {d}")) == want, t
    # a session with another gap
    sessions = reference.sessions(ev, 900_000, lambda e: e["channel"] == "app")
    for t in ("long_sessions_stream", "long_sessions_batch"):
        got = _rows(settings, f"SELECT * FROM features.{t} FINAL WHERE toDate(session_start) = '{DAY}'")
        assert set(got) == sessions, t
    # per-user state: the stream's latest value = the batch's as of the day = the reference
    chans = reference.last_values(ev, "channel", 3)
    stream = dict(_rows(settings, "SELECT user_id, channels FROM features.last_channels_stream FINAL"))
    batch = dict(_rows(settings, "SELECT user_id, channels FROM features.last_channels_batch FINAL"))
    assert stream == batch == chans
    # the removed feature's tables are kept; the registry remembers them
    assert _rows(settings, "SELECT count() > 0 FROM features.top_categories_10m_stream") == [(1,)]
    assert registry.read(settings).features["top_categories_10m"].retired
    # the data-quality checks run on the repository's features
    redis = [svc for svc in local_services(settings) if svc.name == "redis" and svc.start()]
    try:
        results = run_checks(settings.model_copy(update={"feature_repo": V2}), DAY, now=datetime.now(UTC))
    finally:
        for svc in redis:
            svc.stop()
    consistency = {r.feature: r.passed for r in results if r.check == "consistency"}
    kept = ("channel_clicks_30m", "long_sessions", "fav_amount", "last_channels", "last_purchase_time")
    assert {n: consistency[n] for n in kept} == dict.fromkeys(kept, True), [r.message for r in results]
    # the stream never ran the new and the changed definitions on that day: only the batch has rows
    assert not consistency["web_clicks_1h"] and not consistency["app_clicks_10m"]
    # nothing is left to plan (the engines' results are the registry's: nothing changed since)
    s2 = settings.model_copy(update={"feature_repo": V2})
    ops = registry.read(settings).operators
    plan = build_plan(s2, checks={"flink": {"problems": {}, "operators": ops}, "spark": {"problems": {}}})
    assert not plan.changes, plan.lines()
