"""A feature added to a running stream job: `apply` says which features keep their state, stops
the job with a savepoint and restores it with the new feature; the others then go on from their
state (real Kafka, Flink, Redis, chDB): each per-user value equals a computation over the events
before and after the redeploy, where a lost state would hold only the events after it."""

from __future__ import annotations

from pathlib import Path

from common.clickhouse import close_clients, get_client
from common.kafka import ensure_topics, producer
from common.services import local_services
from features.adapters import to_json
from features.generator import GeneratorConfig, generate
from tests.conftest import cli, env_of, free_port
from tests.feature_repos import channels
from tests.support import reference
from tests.support.stream_drill import wait_for

REPOS = Path(__file__).resolve().parents[1] / "feature_repos"
V1, PLUS = REPOS / "channels", REPOS / "channels_plus.py"
UNCHANGED = ("app_clicks_10m", "channel_clicks_30m", "long_sessions", "fav_amount", "last_channels")


def _events() -> list[dict]:
    """2,300 events of 2026-01-01 (outside the backfill's 30 days: apply runs no Spark), each
    with a channel or none."""
    out = []
    for i, e in enumerate(generate(GeneratorConfig(seed=5, users=100, items=300, late=0.0, events_per_second=2), 2300)):
        out.append(e | {"channel": ("app", "web", None)[i % 3]})
    return out


def _produce(settings, events: list[dict]) -> None:
    p = producer(settings)
    for e in events:
        p.produce(settings.kafka.events_topic, to_json(e, channels.EVENT_ATTRIBUTES), key=str(e["user_id"]).encode())
    assert p.flush(60) == 0


def _run(args: list[str], env: dict[str, str]) -> str:
    p = cli(args, env)
    out = p.communicate(timeout=600)[0].decode()
    assert p.returncode == 0, out[-4000:]
    return " ".join(out.split())


def _last_channels(settings) -> dict[int, list[str]]:
    """The stream's last_channels per user, in ClickHouse."""
    rows = get_client(settings).query("SELECT user_id, channels FROM features.last_channels_stream FINAL")
    return dict(rows.result_rows)


def _expected(events: list[dict]) -> dict[int, list[str]]:
    return reference.last_values(reference.accept(events), "channel", 3)


def test_a_feature_added_to_a_running_job_keeps_the_others_state(settings, tmp_path):
    env = env_of(settings) | {
        "LAMBDA_FEATURES_FEATURE_REPO": str(V1),
        "LAMBDA_FEATURES_STREAM__REST_PORT": str(free_port()),
        "LAMBDA_FEATURES_STREAM__CHECKPOINT_INTERVAL_MS": "1000",
    }
    s = settings.model_copy(update={"feature_repo": V1})
    events = _events()
    before, after = events[:2000], events[2000:]  # few after: most lists mix both
    try:
        for svc in local_services(s):
            svc.start()
        ensure_topics(s, [s.kafka.events_topic], s.kafka.partitions)
        _run(["apply", "--yes"], env)
        _produce(s, before)
        assert "stream job started: RUNNING" in _run(["stream", "deploy"], env)
        wait_for(lambda: _last_channels(s) == _expected(before), 300, "the first events")

        applied = _run(["apply", "--yes"], env | {"LAMBDA_FEATURES_FEATURE_REPO": str(PLUS)})
        assert "+ add web_clicks_1h" in applied
        kept = applied.split("state kept: ")[1].split(" state")[0]
        assert all(f in kept for f in UNCHANGED), applied
        assert "state starts empty (new or changed): web_clicks_1h" in applied
        assert "stream job: redeployed (savepoint file:" in applied, applied

        _produce(s, after)
        want = _expected(events)
        lost = _expected(before) | _expected(after)  # what the stream would hold with its state lost
        assert lost != want  # so the test can fail
        wait_for(lambda: _last_channels(s) == want, 300, "the new events on top of the kept state")
    finally:
        cli(["stream", "stop", "--no-savepoint"], env).communicate(timeout=300)
        for svc in local_services(s):
            svc.stop()
        close_clients()
