"""Freshness of the live stream (today only): each stream table's newest time against the
clock, and the online store's newest update."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from common.clickhouse import get_client
from common.errors import PlatformError
from common.repository import load_features
from common.settings import Settings
from dq_checks import sources
from dq_checks.result import CheckResult
from features.definitions import Feature
from warehouse.rows import rows
from warehouse.tables import stream_table, time_columns


def _result(
    settings: Settings, feature: str, day: date, newest: datetime | None, now: datetime, allowed: float, none: str
) -> CheckResult:
    if newest is None:
        severity = settings.dq.freshness_severity
        return CheckResult("freshness", feature, day, False, severity, none, {"allowed_lag_s": allowed})
    lag = (now - newest).total_seconds()
    passed = lag <= allowed
    message = f"newest {newest:%Y-%m-%d %H:%M:%S} UTC, {lag:,.0f}s behind the clock (allowed {allowed:,.0f}s)"
    return CheckResult(
        "freshness", feature, day, passed, settings.dq.freshness_severity, message,
        {"lag_s": lag, "allowed_lag_s": allowed}, [] if passed else [f"newest={newest:%Y-%m-%d %H:%M:%S.%f}"[:-3]],
    )  # fmt: skip


def stream_feature(settings: Settings, f: Feature, day: date, now: datetime) -> CheckResult:
    """The newest time (window ends, session ends, update times) in the table the stream writes,
    over the day and the one before: older rows fail the check anyway, and may be cold."""
    times = time_columns(f)
    newest_expr = f"greatest({', '.join(times)})" if len(times) > 1 else times[0]
    since = day - timedelta(days=1)
    q = f"SELECT max({newest_expr}), count() FROM {rows(settings, stream_table(f), [since, day])}"
    newest, n = get_client(settings).query(q).result_rows[0]
    allowed = settings.dq.max_stream_lag_s + sources.window_span_s(f)
    newest = newest.replace(tzinfo=UTC) if n else None
    return _result(settings, f.name, day, newest, now, allowed, f"no rows since {since}")


def online_store(settings: Settings, day: date, now: datetime) -> CheckResult:
    """The newest `last_event_time` written to any user's hash, from the loader's heartbeat
    (one read, whatever the number of users)."""
    from common.redis_store import get_redis, newest_online_event_ms

    try:
        newest_ms = newest_online_event_ms(get_redis(settings), settings)
    except PlatformError as e:
        return CheckResult("freshness", "online_store", day, False, settings.dq.freshness_severity, e.what)
    newest = datetime.fromtimestamp(newest_ms / 1000, UTC) if newest_ms is not None else None
    return _result(settings, "online_store", day, newest, now, settings.dq.max_online_lag_s, "no rows at all")


def freshness(settings: Settings, day: date, now: datetime | None = None) -> list[CheckResult]:
    """Per streaming feature and for the online store, when `day` is today (UTC); a past day
    gives no freshness results (it is judged on consistency, completeness and validity)."""
    now = now or datetime.now(UTC)
    if day != now.astimezone(UTC).date():
        return []
    return [stream_feature(settings, f, day, now) for f in load_features(settings).stream] + [
        online_store(settings, day, now)
    ]
