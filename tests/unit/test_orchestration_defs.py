"""The Dagster definitions: they load, the graph is what the platform promises, the
schedule asks for yesterday, and the supervisor stays quiet while nothing is deployed."""

from datetime import UTC, datetime

from dagster import AssetKey, RunRequest, build_schedule_context, build_sensor_context

from features.ecommerce import BATCH_FEATURES, STREAM_FEATURES
from orchestration.definitions import build_definitions


def test_definitions_load_with_the_whole_graph(platform_env):
    defs = build_definitions(platform_env)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"stream_job", "archive", "online_store"} <= keys
    for f in (*STREAM_FEATURES, *BATCH_FEATURES):
        assert {f"lake/{f.name}", f"clickhouse/{f.name}"} <= keys
    # the online store waits for every ClickHouse table of the day
    online = graph.get(AssetKey("online_store"))
    assert {AssetKey(["clickhouse", f.name]) for f in STREAM_FEATURES} <= set(online.parent_keys)
    assert {"catalog", "catalog_relay"} <= keys
    for key in keys - {"stream_job", "catalog", "catalog_relay"}:
        assert graph.get(AssetKey.from_user_string(key)).partitions_def is not None, key
    for job in ("daily_batch", "stream_deploy", "catalog_relay_deploy"):  # each raises when missing
        defs.resolve_job_def(job)


def test_daily_schedule_asks_for_the_day_before_after_the_delay(settings):
    s = settings.model_copy(
        update={"orchestration": settings.orchestration.model_copy(update={"reconcile_delay_minutes": 90})}
    )
    defs = build_definitions(s)
    schedule = defs.resolve_schedule_def("daily_batch")
    assert schedule.cron_schedule == "30 1 * * *"
    tick = datetime(2026, 3, 5, 1, 30, tzinfo=UTC)
    [request] = schedule.evaluate_tick(
        build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def())
    ).run_requests
    assert isinstance(request, RunRequest)
    assert request.partition_key == "2026-03-04"


def test_supervisor_skips_while_nothing_is_deployed(platform_env):
    defs = build_definitions(platform_env)
    sensor = defs.resolve_sensor_def("stream_supervisor")
    with build_sensor_context(definitions=defs, resources=defs.resources) as ctx:
        result = sensor.evaluate_tick(ctx)
    assert not result.run_requests
    assert "not deployed" in (result.skip_message or "")


def test_the_definitions_are_built_when_loaded_not_at_import(platform_env, monkeypatch, tmp_path):
    """Importing the module reads no settings and no repository (a broken repository fails
    the code location's load, not every import of orchestration); `defs` builds them."""
    import importlib

    from dagster import Definitions

    import orchestration.definitions as module

    monkeypatch.setenv("LAMBDA_FEATURES_FEATURE_REPO", str(tmp_path / "missing.py"))
    module = importlib.reload(module)  # nothing read: no error
    monkeypatch.delenv("LAMBDA_FEATURES_FEATURE_REPO")
    assert isinstance(module.defs(), Definitions)
    assert module.defs().resolve_job_def("daily_batch")
