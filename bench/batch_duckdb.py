"""The batch backfill's computation in DuckDB, for the benchmark's ratio: the same results
as `lambda-features batch backfill`, computed day by day (the 7 streaming features of each
day from its archive window, except sessions, taken from one pass over the range as Spark
does; the sliding windows of a lead-in day, one without archive before an archived day;
daily partials; the two 30-day features merged from 30 partials),
over the same archive files, writing the lake in the same layout; then the same ClickHouse
and Redis loads (the platform's own functions, which read the lake). Written by hand as an
independent reference: the benchmark also compares its lake with Spark's.

    python bench/batch_duckdb.py --start 2026-01-01 --end 2026-01-30   (LAMBDA_FEATURES_* env)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from batch.archive import day_ms  # noqa: E402
from batch.features_30d import Features30dResult  # noqa: E402
from batch.features_30d import load_clickhouse as load_clickhouse_30d  # noqa: E402
from batch.publish import publish_online  # noqa: E402
from batch.reconcile import STATE_DAYS, ReconcileResult, load_clickhouse  # noqa: E402
from common import archive, lake  # noqa: E402
from common.settings import Settings, load_settings  # noqa: E402

DAY = 86_400_000
COLUMNS = {
    "event_id": "VARCHAR",
    "user_id": "BIGINT",
    "item_id": "BIGINT",
    "category_id": "BIGINT",
    "brand": "VARCHAR",
    "price": "DOUBLE",
    "event_type": "VARCHAR",
    "query": "VARCHAR",
    "event_time": "BIGINT",
    "src_part": "INTEGER",
    "src_off": "BIGINT",
    "late": "BOOLEAN",
}
MONEY = "CAST(COALESCE(price, 0) AS DECIMAL(18, 2))"


def ms(col: str) -> str:
    return f"epoch_ms({col})::TIMESTAMPTZ"


def reconcile_queries(d: int) -> dict[str, str]:
    """Day d (epoch ms of its start): windows starting on it from d-1..d+1, state as of its end from d-6..d."""
    around = f"event_time >= {d - DAY} AND event_time < {d + 2 * DAY}"
    history = f"event_time >= {d - (STATE_DAYS - 1) * DAY} AND event_time < {d + DAY}"
    on_day = f"BETWEEN {d} AND {d + DAY - 1}"
    return {
        "cart_amount": f"""
            SELECT user_id,
              CAST(SUM(CASE WHEN event_type = 'cart' THEN {MONEY} ELSE 0 END) AS DECIMAL(18, 2)) AS cart_amount,
              {ms("MAX(event_time)")} AS updated_at
            FROM (SELECT * FROM ev WHERE {history} AND event_type IN ('cart', 'remove_cart', 'purchase')
                  QUALIFY row_number() OVER (PARTITION BY user_id, item_id
                                             ORDER BY event_time DESC, src_part DESC, src_off DESC) = 1)
            GROUP BY user_id""",
        "category_clicks_1h": f"""
            WITH tiles AS (
              SELECT user_id, category_id, event_time - event_time % 300000 AS tile, count(*) AS n
              FROM ev WHERE {around} AND event_type = 'click' GROUP BY ALL),
            w AS (SELECT user_id, category_id, tile - k * 300000 AS ws, SUM(n) AS clicks
                  FROM tiles, range(12) t(k) GROUP BY ALL)
            SELECT user_id, {ms("ws")} AS window_start, {ms("ws + 3600000")} AS window_end, category_id,
                   CAST(clicks AS BIGINT) AS clicks
            FROM w WHERE ws {on_day}""",
        "uv_1m": f"""
            SELECT {ms("ws")} AS window_start, {ms("ws + 60000")} AS window_end,
                   count(DISTINCT user_id) AS uv, count(*) AS events
            FROM (SELECT *, event_time - event_time % 60000 AS ws FROM ev WHERE {around})
            GROUP BY ws HAVING ws {on_day}""",
        "user_sessions": f"""
            SELECT user_id, {ms("session_start")} AS session_start, {ms("session_end")} AS session_end,
              events, clicks, carts, purchases FROM sessions WHERE session_start {on_day}""",
        "last_searches": f"""
            SELECT user_id, list(query ORDER BY event_time DESC, src_part DESC, src_off DESC)[1:10] AS queries,
                   {ms("MAX(event_time)")} AS updated_at
            FROM ev WHERE {history} AND event_type = 'search' AND query IS NOT NULL GROUP BY user_id""",
        "hot_items_5m": f"""
            WITH c AS (SELECT event_time - event_time % 300000 AS ws, item_id, count(*) AS clicks
                       FROM ev WHERE {around} AND event_type = 'click' AND item_id IS NOT NULL GROUP BY ALL)
            SELECT {ms("ws")} AS window_start, {ms("ws + 300000")} AS window_end, rn AS rank, item_id, clicks
            FROM (SELECT *, row_number() OVER (PARTITION BY ws ORDER BY clicks DESC, item_id) AS rn FROM c)
            WHERE rn <= 10 AND ws {on_day}""",
        "last_event_time": f"""
            SELECT user_id, {ms("MAX(event_time)")} AS last_event_time FROM ev WHERE {history} GROUP BY user_id""",
    }


def add_sessions(con, start: date, end: date) -> None:
    """The sessions of the whole range at once, as the Spark backfill computes them: from the
    events of start-1 .. end+1, so a session is cut only at the end of that span."""
    lo, hi = day_ms(start) - DAY, day_ms(end) + 2 * DAY
    con.execute(f"""CREATE OR REPLACE TABLE sessions AS
        WITH e AS (
          SELECT *, CASE WHEN event_time - lag(event_time) OVER w > 300000 THEN 1 ELSE 0 END AS brk
          FROM ev WHERE event_time >= {lo} AND event_time < {hi}
          WINDOW w AS (PARTITION BY user_id ORDER BY event_time, src_part, src_off)),
        s AS (SELECT *, SUM(brk) OVER (PARTITION BY user_id ORDER BY event_time, src_part, src_off
                                      ROWS UNBOUNDED PRECEDING) AS sid FROM e)
        SELECT user_id, MIN(event_time) AS session_start, MAX(event_time) AS session_end,
          count(*) AS events, count(*) FILTER (event_type = 'click') AS clicks,
          count(*) FILTER (event_type = 'cart') AS carts, count(*) FILTER (event_type = 'purchase') AS purchases
        FROM s GROUP BY user_id, sid""")


def add_partials(con, day: date) -> None:
    d = day_ms(day)
    on_day = f"event_time >= {d} AND event_time < {d + DAY}"
    con.execute(f"DELETE FROM p_top WHERE dt = DATE '{day}'; DELETE FROM p_stats WHERE dt = DATE '{day}'")
    con.execute(f"""INSERT INTO p_top SELECT DATE '{day}', user_id, brand, count(*) FROM ev
        WHERE {on_day} AND event_type = 'purchase' AND brand IS NOT NULL GROUP BY ALL""")
    con.execute(f"""INSERT INTO p_stats SELECT DATE '{day}', user_id,
        count(*) FILTER (event_type = 'purchase'), SUM({MONEY}) FILTER (event_type = 'purchase'),
        list(DISTINCT item_id) FILTER (event_type = 'purchase' AND item_id IS NOT NULL)
        FROM ev WHERE {on_day} GROUP BY user_id""")


def rolling_queries(day: date) -> dict[str, str]:
    days = f"dt BETWEEN DATE '{day - timedelta(days=29)}' AND DATE '{day}'"
    return {
        "top_brands_30d": f"""
            SELECT DATE '{day}' AS as_of, user_id, rn AS rank, brand, purchases FROM (
              SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY purchases DESC, brand) AS rn
              FROM (SELECT user_id, brand, CAST(SUM(n) AS BIGINT) AS purchases FROM p_top WHERE {days} GROUP BY ALL))
            WHERE rn <= 3""",
        "purchase_stats_30d": f"""
            SELECT DATE '{day}' AS as_of, user_id, CAST(SUM(purchases) AS BIGINT) AS purchases,
              CAST(COALESCE(SUM(gmv), 0) AS DECIMAL(18, 2)) AS gmv,
              CAST(len(list_distinct(flatten(list(items)))) AS BIGINT) AS distinct_items,
              count(DISTINCT dt) AS active_days
            FROM p_stats WHERE {days} GROUP BY user_id""",
    }


def write(con, sql: str, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*"):
        old.unlink()
    n = con.execute(f"COPY ({sql}) TO '{folder / 'part-0.parquet'}' (FORMAT parquet)").fetchone()[0]
    (folder / "_SUCCESS").touch()
    return n


def backfill(settings: Settings, start: date, end: date, stores: bool) -> dict[str, float]:
    import duckdb

    t = {"t0": time.monotonic()}
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{settings.batch.driver_memory.upper()}B'")  # the heap Spark gets
    first = start - timedelta(days=29)  # the 30-day features need partials back to here
    folders = [
        archive.day_parts(settings, d)
        for k in range((end - first).days + 2)
        if archive.is_archived(settings, d := first + timedelta(days=k))
    ]
    cols = ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items())
    con.execute(
        f"CREATE TABLE ev AS SELECT * FROM read_json({folders!r}, format = 'newline_delimited', columns = {{{cols}}})"
    )
    con.execute("CREATE TABLE p_top (dt DATE, user_id BIGINT, brand VARCHAR, n BIGINT)")
    con.execute("CREATE TABLE p_stats (dt DATE, user_id BIGINT, purchases BIGINT, gmv DECIMAL(38, 2), items BIGINT[])")
    t["load"] = time.monotonic()
    add_sessions(con, start, end)
    store_s = 0.0
    archived = lambda d: archive.is_archived(settings, d)  # noqa: E731
    for k in range((start - first).days):  # partials of the days before the range
        if archived(day := first + timedelta(days=k)):
            add_partials(con, day)
    for k in range((end - start).days + 1):
        day = start + timedelta(days=k)
        if not archived(day):
            continue
        if not archived(lead := day - timedelta(days=1)):  # its last sliding windows hold events of `day`
            rec = ReconcileResult(lead, lead_in=True, missing_days=archive.missing_days(settings, [lead]))
            out = lake.feature_day_dir(settings, "category_clicks_1h", lead)
            sql = reconcile_queries(day_ms(lead))["category_clicks_1h"]
            rec.rows["category_clicks_1h"], rec.lake["category_clicks_1h"] = write(con, sql, out), str(out)
            if stores:
                s0 = time.monotonic()
                load_clickhouse(settings, rec)
                store_s += time.monotonic() - s0
        rec = ReconcileResult(day)
        for name, sql in reconcile_queries(day_ms(day)).items():
            out = lake.feature_day_dir(settings, name, day)
            rec.rows[name], rec.lake[name] = write(con, sql, out), str(out)
        add_partials(con, day)
        roll = Features30dResult(day)
        for name, sql in rolling_queries(day).items():
            out = lake.as_of_dir(settings, name, day)
            roll.rows[name], roll.lake[name] = write(con, sql, out), str(out)
        if stores:
            s0 = time.monotonic()
            load_clickhouse(settings, rec)
            load_clickhouse_30d(settings, roll)
            publish_online(settings, day)
            store_s += time.monotonic() - s0
    end_t = time.monotonic()
    return {
        "load_s": t["load"] - t["t0"],
        "compute_s": end_t - t["load"] - store_s,
        "stores_s": store_s,
        "total_s": end_t - t["t0"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--start", type=date.fromisoformat, required=True)
    ap.add_argument("--end", type=date.fromisoformat, required=True)
    ap.add_argument("--no-stores", dest="stores", action="store_false", help="lake only, no ClickHouse/Redis")
    a = ap.parse_args()
    print(json.dumps(backfill(load_settings(), a.start, a.end, a.stores)))


if __name__ == "__main__":
    main()
