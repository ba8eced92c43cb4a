"""What the code compiles, against committed snapshots, so a review shows its change: each
feature's Flink SQL (a change there redeploys the stream job through a savepoint), each
feature's Spark SQL, and the Dagster graph. Refresh: see tests/support/snapshot.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from batch.sql import merge_sql, partial_sql, reduce_sql, spark_sql, spread_sql
from common.kafka import bootstrap
from common.settings import ENV_PREFIX, Settings, load_settings
from features.definitions import Feature
from features.ecommerce import BATCH_FEATURES, STREAM_FEATURES
from orchestration.definitions import build_definitions
from streaming.deployment import definition_fingerprint
from streaming.job import CatalogSource, KafkaSource, base_sql, feature_sql, time_bounds
from streaming.sql import FlinkQuery, compile_feature
from tests.support.snapshot import REFRESH, assert_only, assert_snapshot

AS_OF = ("2026-01-30", "2026-01-31")  # the days a Spark query computes, where it takes days


@pytest.fixture
def defaults(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The embedded defaults, whatever this shell sets, with a fixed home and Kafka address:
    the snapshots hold no path or port of the machine that wrote them."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    return load_settings(home=Path("/lambda-features"), kafka={"bootstrap": "kafka:9092"})


def _sql_file(header: list[str], statements: list[str]) -> str:
    comments = [f"-- {line}" for line in [*header, f"refresh: {REFRESH}"]]
    return "\n".join(comments) + "\n\n" + "".join(f"{s};\n\n" for s in statements).rstrip("\n") + "\n"


# the shipped repository's features (the `defaults` fixture unsets LAMBDA_FEATURES_FEATURE_REPO too)
@pytest.mark.parametrize(
    "view_ddl, q", [pytest.param(v, q, id=q.feature.name) for v, q in map(compile_feature, STREAM_FEATURES)]
)
def test_flink_sql(defaults: Settings, view_ddl: str, q: FlinkQuery):
    kind = "upsert (updating)" if q.updating else "append-only"
    header = [f"{q.feature.name}: the stream job's input view, sink and INSERT; output {q.output}, {kind}"]
    assert_snapshot(f"flink/{q.feature.name}.sql", _sql_file(header, feature_sql(view_ddl, q, "kafka", defaults)))


def test_flink_sql_before_the_features(defaults: Settings):
    s = defaults
    source = KafkaSource(s.kafka.events_topic, bootstrap(s), s.kafka.group_id, start=s.kafka.start)
    header = [
        "the stream job's statements before the features: Kafka source, acceptance rules, dead letters, archive, "
        "the catalogue's versioned table and its change history",
        "(home /lambda-features, Kafka at kafka:9092)",
        f"definition fingerprint (stream_job's code version): {definition_fingerprint(s)}",
    ]
    catalog = CatalogSource(s.catalog.topic, bootstrap(s), int(s.catalog.idle_timeout_s * 1000))
    statements = base_sql(source, s, time_bounds(s), catalog=catalog)
    assert_snapshot("flink/_job.sql", _sql_file(header, statements))


def _spark_statements(f: Feature) -> list[tuple[str, str]]:
    """(what, SQL) for every query the batch layer compiles for f."""
    if f in BATCH_FEATURES:
        days = f.aggregation.days  # type: ignore[union-attr]
        return [
            ("partial_sql: the daily partials over `events`", partial_sql(f)),
            (
                f"spread_sql: each day's partials into the as-of days of its {days}-day span",
                spread_sql("daily", "dt", days, *AS_OF),
            ),
            ("merge_sql: the feature as of each day from `partials`", merge_sql(f)),
            (
                f"spark_sql as of {AS_OF[1]}: the full rescan over `events` (batch features --rescan)",
                spark_sql(f, AS_OF[1]),
            ),
        ]
    if f.windowed:
        return [("spark_sql: the windows over `events`", spark_sql(f))]
    return [
        ("reduce_sql: each day's events of `events` that can still decide the state", reduce_sql(f)),
        ("spark_sql by as_of: the state as of each day's end, over the reduced events", spark_sql(f, by=("as_of",))),
    ]


@pytest.mark.parametrize("f", (*STREAM_FEATURES, *BATCH_FEATURES), ids=lambda f: f.name)
def test_spark_sql(f: Feature):
    statements = [f"-- {what}\n{sql}" for what, sql in _spark_statements(f)]
    header = [f"{f.name}: the batch layer's Spark SQL, in the order a run uses it"]
    assert_snapshot(f"spark/{f.name}.sql", _sql_file(header, statements))


def _graph(s: Settings) -> dict:
    """The Dagster definitions as data: assets with their deps, partitions and checks; jobs,
    schedules, sensors and resources."""
    defs = build_definitions(s)
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys()):
        node = graph.get(key)
        deps = {}
        for parent in sorted(node.parent_keys):
            partitioned = node.partitions_def and graph.get(parent).partitions_def
            deps[parent.to_user_string()] = repr(graph.get_partition_mapping(key, parent)) if partitioned else None
        checks = {
            c.name: "blocking" if graph.get_check_spec(c).blocking else "not blocking" for c in sorted(node.check_keys)
        }
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": deps,
            "partitions": str(node.partitions_def) if node.partitions_def else None,
            "backfill policy": repr(node.backfill_policy) if node.backfill_policy else None,
            "code version": node.code_version,
            "checks": checks,
        }
    repo = defs.get_repository_def()
    jobs = {}
    for job in repo.get_all_jobs():
        if job.name.startswith("__"):  # Dagster's implicit job of all assets
            continue
        layer = job.asset_layer
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in layer.selected_asset_keys),
            "checks": sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in layer.asset_graph.asset_check_keys),
            "partitions": str(job.partitions_def) if job.partitions_def else None,
            "executor": job.executor_def.name,
        }
    schedules = {
        sc.name: {
            "job": sc.job_name,
            "cron": sc.cron_schedule,
            "timezone": sc.execution_timezone,
            "default status": sc.default_status.value,
        }
        for sc in repo.schedule_defs
    }
    sensors = {
        se.name: {
            "jobs": sorted(t.job_name for t in se.targets),
            "minimum interval s": se.minimum_interval_seconds,
            "default status": se.default_status.value,
        }
        for se in repo.sensor_defs
    }
    resources = {k: type(v).__name__ for k, v in defs.resources.items()}
    return {"assets": assets, "jobs": jobs, "schedules": schedules, "sensors": sensors, "resources": resources}


def test_dagster_graph(defaults: Settings):
    text = json.dumps(_graph(defaults), indent=2, sort_keys=True) + "\n"
    assert_snapshot("dagster/graph.json", text)


def test_no_snapshot_without_its_test():
    assert_only("flink", {f"{f.name}.sql" for f in STREAM_FEATURES} | {"_job.sql"})
    assert_only("spark", {f"{f.name}.sql" for f in (*STREAM_FEATURES, *BATCH_FEATURES)})
    assert_only("dagster", {"graph.json"})
