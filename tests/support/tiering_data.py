"""Test data for tiering: rows inserted straight into the feature tables, and the serving
views' answers to compare before and after a move."""

from __future__ import annotations

from datetime import date

from common.clickhouse import get_client, row_checksum
from common.settings import Settings
from warehouse.schema import create_tables

DAYS = [date(2024, 1, d) for d in range(1, 6)]  # 2024-01-01..05
TODAY = date(2024, 1, 11)  # hot_days 7: days before 2024-01-04 are due
DUE_DAYS = [d for d in DAYS if d < date(2024, 1, 4)]
VIEWS = ("uv_1m", "category_clicks_1h", "user_sessions", "hot_items_5m")


def seed(settings: Settings) -> None:
    """Five days of stream rows, a reconciled batch day, and sliding-window tiles across midnight."""
    create_tables(settings)
    c = get_client(settings)
    db = settings.clickhouse.database
    t0 = "toDateTime64('2024-01-01 00:00:00', 3, 'UTC')"
    c.command(
        f"INSERT INTO {db}.uv_1m_stream SELECT {t0} + number * 60 AS ws, ws + 60, number % 50, number % 90 "
        "FROM numbers(1440 * 5)"
    )
    c.command(  # the batch's day 2 differs from the stream's, and the view must pick it
        f"INSERT INTO {db}.uv_1m_batch SELECT {t0} + toIntervalDay(1) + number * 60 AS ws, ws + 60, 7, 70 "
        "FROM numbers(1440)"
    )
    c.command(f"INSERT INTO {db}.reconciled_days VALUES ('uv_1m', '2024-01-02', 1440, 1, '', now64())")
    c.command(
        f"INSERT INTO {db}.category_clicks_1h_tiles_stream SELECT number % 7, {t0} + (number % 1400) * 300 AS ws, "
        "ws + 300, if(number % 11 = 0, NULL, number % 5), 1 + number % 3 FROM numbers(20000)"
    )
    c.command(
        f"INSERT INTO {db}.user_sessions_stream SELECT number % 13, {t0} + number * 97 AS s, s + 30, 3, 1, 1, 0 "
        "FROM numbers(4000)"
    )
    c.command(
        f"INSERT INTO {db}.hot_items_5m_stream SELECT {t0} + intDiv(number, 10) * 300 AS ws, ws + 300, "
        "number % 10 + 1, number, 100 - number % 10 FROM numbers(14000)"
    )


def answers(settings: Settings) -> dict[str, list]:
    """What an analyst sees: every row of each serving view (as a checksum) and a daily rollup."""
    c = get_client(settings)
    db = settings.clickhouse.database
    out: dict[str, list] = {}
    for v in VIEWS:
        cols = [name for name, *_ in c.query(f"DESCRIBE {db}.{v}").result_rows]
        out[v] = c.query(f"SELECT count(), {row_checksum(cols)} FROM {db}.{v}").result_rows
    out["uv_by_day"] = c.query(
        f"SELECT toDate(window_start) d, sum(uv), sum(events) FROM {db}.uv_1m GROUP BY d ORDER BY d"
    ).result_rows
    out["clicks_by_day"] = c.query(
        f"SELECT toDate(window_start) d, count(), sum(clicks) FROM {db}.category_clicks_1h GROUP BY d ORDER BY d"
    ).result_rows
    return out


def hot_days(settings: Settings, table: str) -> list[date]:
    return [
        r[0]
        for r in get_client(settings)
        .query(
            "SELECT DISTINCT toDate(partition) d FROM system.parts WHERE database = {db:String} "
            "AND table = {t:String} AND active ORDER BY d",
            parameters={"db": settings.clickhouse.database, "t": table},
        )
        .result_rows
    ]
