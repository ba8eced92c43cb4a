"""The latest data-quality and tiering results, read from ClickHouse at each scrape, and the
freshness bound of every feature (what the `freshness` check allows)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily

from common.clickhouse import get_client
from common.repository import load_features
from common.settings import Settings
from dq_checks.sources import window_span_s
from tiering import manifest

DQ_DAYS = 7  # days of results exported, back from the newest day checked


def dq_metrics(settings: Settings) -> Iterator[GaugeMetricFamily]:
    """The latest result of every check per feature and day over the last DQ_DAYS days checked."""
    db = settings.clickhouse.database
    rows = (
        get_client(settings, start=False)
        .query(
            f"SELECT check, feature, toString(day), argMax(passed, checked_at), argMax(severity, checked_at), "
            f"argMax(metrics, checked_at), max(checked_at) FROM {db}.dq_results "
            f"WHERE day >= (SELECT max(day) FROM {db}.dq_results) - {DQ_DAYS - 1} GROUP BY check, feature, day"
        )
        .result_rows
    )
    passed = GaugeMetricFamily(
        "lf_dq_check_passed",
        "1 when the latest run of the check passed for the feature and day",
        labels=["check", "feature", "day", "severity"],
    )
    failed = GaugeMetricFamily(
        "lf_dq_failed_checks", "Checks whose latest result failed, over the days exported", labels=["check", "severity"]
    )
    mismatch = GaugeMetricFamily(
        "lf_dq_mismatch_rate",
        "Stream against batch: share of rows that differ, latest check",
        labels=["feature", "day"],
    )
    failures: dict[tuple[str, str], int] = {}
    newest = None
    for check, feature, day, ok, severity, metrics, checked_at in rows:
        passed.add_metric([check, feature, day, severity], ok)
        failures[(check, severity)] = failures.get((check, severity), 0) + (not ok)
        if "mismatch_rate" in metrics:
            mismatch.add_metric([feature, day], metrics["mismatch_rate"])
        newest = checked_at if newest is None else max(newest, checked_at)
    for (check, severity), n in failures.items():
        failed.add_metric([check, severity], n)
    yield from (passed, failed, mismatch)
    if newest is not None:
        yield GaugeMetricFamily(
            "lf_dq_last_check_timestamp_seconds", "When a check last recorded a result", value=newest.timestamp()
        )


def tiering_metrics(settings: Settings) -> Iterator[GaugeMetricFamily]:
    """What sits in the cold tier now, per table: partitions, rows and bytes moved there."""
    client = get_client(settings, start=False)
    table = f"{settings.clickhouse.database}.{manifest.TABLE}"
    rows = []
    if client.command(f"EXISTS TABLE {table}"):  # tiering creates it on its first run
        rows = client.query(
            f"SELECT `table`, count(), sum(rows), sum(bytes) FROM {table} FINAL WHERE state = 'cold' GROUP BY `table`"
        ).result_rows
    families = [
        GaugeMetricFamily(
            f"lf_tiering_moved_{what}", f"{what.capitalize()} in the cold tier, per table", labels=["table"]
        )
        for what in ("partitions", "rows", "bytes")
    ]
    for table, *values in rows:
        for family, v in zip(families, values, strict=True):
            family.add_metric([table], v)
    yield from families


def freshness_bounds(settings: Settings) -> GaugeMetricFamily:
    """How far behind the clock each feature may be (DQ__MAX_*_LAG_S plus its window or gap)."""
    g = GaugeMetricFamily(
        "lf_feature_freshness_bound_seconds", "The freshness check's allowed lag per feature", labels=["feature"]
    )
    for f in load_features(settings).stream:
        g.add_metric([f.name], settings.dq.max_stream_lag_s + window_span_s(f))
    g.add_metric(["online_store"], settings.dq.max_online_lag_s)
    return g
