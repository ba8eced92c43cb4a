"""Data-quality checks on a small hand-made day in real chDB: clean data passes, and each
check fails on a defect of its own kind and names the offending keys."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime

import orjson
import pytest

from common.archive import hour_dir
from common.clickhouse import get_client
from dq_checks import CheckResult, completeness, consistency, freshness, record, run_checks, validity
from dq_checks.freshness import stream_feature
from dq_checks.referential import referential_completeness
from features.ecommerce import FEATURES, STREAM_FEATURES, UV_1M
from tests.support.archive import at, write_archive
from warehouse.schema import create_tables

D = date(2026, 2, 10)
NOW = datetime(2026, 2, 10, 12, 3, tzinfo=UTC)  # for the freshness of uv_1m (newest window ends 12:01)


def t(hour: int, minute: int) -> int:
    return at(D, hour) + minute * 60_000


EVENTS = [
    {"user_id": 1, "event_type": "click", "item_id": 100, "category_id": 7, "event_time": t(10, 0)},
    {"user_id": 1, "event_type": "click", "item_id": 100, "category_id": 7, "event_time": t(10, 2)},
    {"user_id": 2, "event_type": "cart", "item_id": 200, "price": 9.5, "brand": "acme", "event_time": t(10, 3)},
    {"user_id": 2, "event_type": "search", "query": "shoes", "event_time": t(11, 0)},
    # arrived after the watermark: the stream's windows dropped it, the batch counted it
    {"user_id": 1, "event_type": "click", "item_id": 100, "category_id": 7, "event_time": t(10, 4), "late": True},
    {"user_id": 3, "event_type": "login", "event_time": t(12, 0)},
]
TS = "'2026-02-10 {}:00.000'"


def ts(hm: str) -> str:
    return TS.format(hm)


# What the stream wrote (windows without the late click), and what the batch wrote.
STREAM_ROWS = {
    "category_clicks_1h_tiles_stream": [f"(1, {ts('10:00')}, {ts('10:05')}, 7, 2)"],
    "uv_1m_stream": [
        f"({ts('10:00')}, {ts('10:01')}, 1, 1)",
        f"({ts('10:02')}, {ts('10:03')}, 1, 1)",
        f"({ts('10:03')}, {ts('10:04')}, 1, 1)",
        f"({ts('11:00')}, {ts('11:01')}, 1, 1)",
        f"({ts('12:00')}, {ts('12:01')}, 1, 1)",
    ],
    "user_sessions_stream": [
        f"(1, {ts('10:00')}, {ts('10:02')}, 2, 2, 0, 0)",
        f"(2, {ts('10:03')}, {ts('10:03')}, 1, 0, 1, 0)",
        f"(2, {ts('11:00')}, {ts('11:00')}, 1, 0, 0, 0)",
        f"(3, {ts('12:00')}, {ts('12:00')}, 1, 0, 0, 0)",
    ],
    "hot_items_5m_stream": [f"({ts('10:00')}, {ts('10:05')}, 1, 100, 2)"],
    "cart_amount_stream": [f"(2, 9.50, {ts('10:03')})"],
    "last_searches_stream": [f"(2, ['shoes'], {ts('11:00')})"],
    "last_event_time_stream": [f"(1, {ts('10:04')})", f"(2, {ts('11:00')})", f"(3, {ts('12:00')})"],
}
BATCH_CHANGES = {  # the late click at 10:04, counted by the batch
    "uv_1m": ["INSERT INTO features.uv_1m_batch VALUES ({}, {}, 1, 1)".format(ts("10:04"), ts("10:05"))],
    "user_sessions": [
        "ALTER TABLE features.user_sessions_batch UPDATE session_end = {}, events = 3, clicks = 3 "
        "WHERE user_id = 1 SETTINGS mutations_sync = 1".format(ts("10:04"))
    ],
    "hot_items_5m": ["ALTER TABLE features.hot_items_5m_batch UPDATE clicks = 3 WHERE 1 SETTINGS mutations_sync = 1"],
    "category_clicks_1h": [
        "ALTER TABLE features.category_clicks_1h_batch UPDATE clicks = 3 WHERE 1 SETTINGS mutations_sync = 1"
    ],
}


def sql(settings, q: str):
    return get_client(settings).query(q).result_rows


def build_day(settings, extra_events: tuple[dict, ...] = ()) -> None:
    """A day the stream and the batch agree on, except where the late click explains it."""
    write_archive(settings, [{"late": False, **e} for e in (*EVENTS, *extra_events)])
    create_tables(settings)
    ch = get_client(settings)
    for table, rows in STREAM_ROWS.items():
        ch.command(f"INSERT INTO features.{table} VALUES {', '.join(rows)}")
    for f in STREAM_FEATURES:
        cols = ", ".join(f"`{c.name}`" for c in f.columns)
        ch.command(f"INSERT INTO features.{f.name}_batch SELECT {cols} FROM features.{f.name}_stream")
        for stmt in BATCH_CHANGES.get(f.name, []):
            ch.command(stmt)
        ch.command(f"INSERT INTO features.reconciled_days VALUES ('{f.name}', '{D}', 1, 1, '', now64(3))")
    ch.command(f"INSERT INTO features.top_brands_30d VALUES ('{D}', 2, 1, 'acme', 1)")
    ch.command(f"INSERT INTO features.purchase_stats_30d VALUES ('{D}', 2, 1, 9.50, 1, 1)")


@pytest.fixture
def day(settings):
    build_day(settings)
    return settings


def by(results: list[CheckResult], check: str, feature: str) -> CheckResult:
    return next(r for r in results if r.check == check and r.feature == feature)


def failed(results: list[CheckResult]) -> list[tuple[str, str]]:
    return [(r.check, r.feature) for r in results if not r.passed]


def test_clean_day_passes_and_late_differences_are_explained(day):
    results = consistency(day, D) + completeness(day, D) + validity(day, D)
    assert failed(results) == [], [r for r in results if not r.passed]
    explained = {r.feature: r.metrics["explained_by_late"] for r in results if r.check == "consistency"}
    # 12 sliding windows hold the late click; one minute, one session, one top-k window
    assert explained == {
        "cart_amount": 0,
        "category_clicks_1h": 12,
        "uv_1m": 1,
        "user_sessions": 1,
        "last_searches": 0,
        "hot_items_5m": 1,
        "last_event_time": 0,
        "brand_clicks_1h": 0,  # no rows of the catalogue features on this day
        "category_purchases_1h": 0,
    }
    assert by(results, "consistency", "uv_1m").metrics["late_events"] == 1
    assert by(results, "consistency", "hot_items_5m").metrics["jaccard"] == 1.0
    assert {(r.check, r.feature) for r in results if r.check.startswith("validity")} == {
        (c, f.name) for f in FEATURES for c in ("validity_values", "validity_schema")
    }


def test_a_late_purchase_explains_a_catalogue_window_only_in_the_batch(settings):
    """The batch's sum of prices exceeds the stream's by the late purchase's price, not by at
    most one per late event as a count does: any late event of the window explains it."""
    late = {"user_id": 4, "event_type": "purchase", "item_id": 300, "price": 19.99, "event_time": t(10, 30)}
    build_day(settings, ({**late, "late": True},))
    get_client(settings).command(
        f"INSERT INTO features.category_purchases_1h_batch VALUES ({ts('10:00')}, {ts('11:00')}, 7, 1, 19.99)"
    )
    r = by(consistency(settings, D), "consistency", "category_purchases_1h")
    assert r.passed and r.metrics["only_batch"] == 1 and r.metrics["explained_by_late"] == 1, r


def test_referential_completeness_counts_only_events_with_an_item(day):
    """Searches and logins have no item: they are neither known nor unknown items (they once
    counted as unknown item 0, which made a catalogue with every item ERROR)."""
    history = day.catalog_history_dir / f"dt={D}" / "part-0"
    history.parent.mkdir(parents=True)
    change = {"op": "c", "changed_at": t(0, 0), "binlog_file": "binlog.000001", "binlog_row": 0}
    history.write_bytes(b"".join(orjson.dumps({**change, "item_id": i, "binlog_pos": i}) + b"\n" for i in (100, 200)))
    r = referential_completeness(day, D)
    assert (r.metrics["events_with_item"], r.metrics["unknown_item_events"]) == (4, 0) and r.passed, r
    history.write_bytes(orjson.dumps({**change, "item_id": 100, "binlog_pos": 1}) + b"\n")  # item 200 unknown
    r = referential_completeness(day, D)
    assert (r.metrics["events_with_item"], r.metrics["unknown_item_events"]) == (4, 1) and not r.passed, r
    assert r.sample == ["item_id=200"]


def test_events_dropped_from_the_stream(day):
    get_client(day).command(
        f"ALTER TABLE features.uv_1m_stream DELETE WHERE window_start = {ts('11:00')} SETTINGS mutations_sync = 1"
    )
    r = by(consistency(day, D), "consistency", "uv_1m")
    assert not r.passed and r.blocking and r.metrics["only_batch"] == 2 and r.metrics["unexplained"] == 1
    assert r.sample == ["window_start=2026-02-10 11:00:00.000: only in batch"]


def test_events_missing_from_the_archive(day):
    part = next(hour_dir(day, D, 10).glob("part-*"))
    lines = part.read_bytes().splitlines(keepends=True)
    part.write_bytes(b"".join(line for line in lines if orjson.loads(line)["src_off"] != 1))
    r = by(completeness(day, D), "completeness_events", "archive")
    assert not r.passed and r.severity == "ERROR" and r.metrics["missing"] == 1
    assert r.sample == ["src_part=0, src_off=1"]


def test_dead_letters_account_for_positions(day):
    part = next(hour_dir(day, D, 10).glob("part-*"))
    lines = part.read_bytes().splitlines(keepends=True)
    part.write_bytes(b"".join(line for line in lines if orjson.loads(line)["src_off"] not in (1, 2)))
    dead = day.dead_letter_dir / "stream"
    dead.mkdir(parents=True)
    (dead / "part-0").write_bytes(orjson.dumps({"reason": "negative price", "src_part": 0, "src_off": 1}) + b"\n")
    r = by(completeness(day, D), "completeness_events", "archive")
    assert r.metrics["dead_letters"] == 1 and r.metrics["missing"] == 1 and r.sample == ["src_part=0, src_off=2"]


def test_window_counted_twice(day):
    get_client(day).command(
        "ALTER TABLE features.uv_1m_stream UPDATE events = 2 * events, uv = 2 * uv "
        f"WHERE window_start = {ts('10:00')} SETTINGS mutations_sync = 1"
    )
    r = by(consistency(day, D), "consistency", "uv_1m")
    # a late click sits in 10:04 only; a stream count above the batch's is never explained by late events
    assert not r.passed and r.metrics["value_mismatches"] == 1 and r.metrics["smape"] > 0
    assert r.sample == ["window_start=2026-02-10 10:00:00.000: values differ"]


def test_wrong_value(day):
    get_client(day).command(
        "ALTER TABLE features.cart_amount_stream UPDATE cart_amount = 19 WHERE user_id = 2 SETTINGS mutations_sync = 1"
    )
    r = by(consistency(day, D), "consistency", "cart_amount")
    assert not r.passed and r.sample == ["user_id=2: values differ"]


def test_money_within_tolerance_passes(day):
    day.dq.money_rel_tolerance = 0.01
    get_client(day).command(
        "ALTER TABLE features.cart_amount_stream UPDATE cart_amount = 9.51 WHERE 1 SETTINGS mutations_sync = 1"
    )
    assert by(consistency(day, D), "consistency", "cart_amount").passed


def test_value_out_of_range(day):
    ch = get_client(day)
    ch.command(f"INSERT INTO features.hot_items_5m_stream VALUES ({ts('10:00')}, {ts('10:05')}, 11, 101, 1)")
    ch.command("ALTER TABLE features.cart_amount_batch UPDATE cart_amount = -1 WHERE 1 SETTINGS mutations_sync = 1")
    r = by(validity(day, D), "validity_values", "hot_items_5m")
    assert not r.passed and r.severity == "ERROR" and r.metrics["stream: not rank in 1..10"] == 1
    assert r.sample == ["stream: window_start=2026-02-10 10:00:00.000, rank=11: not rank in 1..10"]
    r = by(validity(day, D), "validity_values", "cart_amount")
    assert not r.passed and r.sample == ["batch: user_id=2: not cart_amount >= 0"]


def test_missing_hour(day):
    shutil.rmtree(hour_dir(day, D, 11))
    r = by(completeness(day, D), "completeness_hours", "archive")
    assert not r.passed and r.severity == "WARN" and r.sample == [f"{D} 11:00"]


def test_stale_stream(day):
    assert stream_feature(day, UV_1M, D, NOW).passed
    late = stream_feature(day, UV_1M, D, datetime(2026, 2, 10, 13, 0, tzinfo=UTC))
    assert not late.passed and late.blocking and late.metrics["lag_s"] == 59 * 60
    assert freshness(day, date(2026, 2, 9), NOW) == []  # a past day is not judged on freshness


def test_changed_column_type(day):
    get_client(day).command("ALTER TABLE features.uv_1m_batch MODIFY COLUMN uv Int32")
    r = by(validity(day, D), "validity_schema", "uv_1m")
    assert not r.passed and "features.uv_1m_batch.uv: Int32, expected Int64" in r.sample


def test_not_reconciled_day_is_a_warning(day):
    r = by(consistency(day, date(2026, 2, 11)), "consistency", "uv_1m")
    assert not r.passed and r.severity == "WARN" and "batch reconcile --date 2026-02-11" in r.message


def test_run_checks_and_record(day):
    results = run_checks(day, D, now=NOW)
    assert by(results, "freshness", "uv_1m").passed
    run_id = record(day, results)
    rows = sql(day, f"SELECT check, feature, passed, metrics FROM features.dq_results WHERE run_id = '{run_id}'")
    assert len(rows) == len(results)
    uv = next(r for r in rows if r[0] == "consistency" and r[1] == "uv_1m")
    assert uv[2] == 1 and uv[3]["explained_by_late"] == 1.0


def test_dq_command_prints_and_exits_on_error(day):
    from common.clickhouse import close_clients
    from tests.conftest import cli, env_of

    close_clients()  # the CLI process opens chDB
    clean = cli(["dq", "--date", str(D)], env_of(day))
    out = clean.communicate(timeout=300)[0].decode()
    assert clean.returncode == 0, out
    assert "consistency" in out and "recorded in features.dq_results" in out
    get_client(day).command(
        "ALTER TABLE features.cart_amount_stream UPDATE cart_amount = 19 WHERE 1 SETTINGS mutations_sync = 1"
    )
    close_clients()
    broken = cli(["dq", "--date", str(D), "--no-record"], env_of(day))
    out = broken.communicate(timeout=300)[0].decode()
    assert broken.returncode == 1, out
    assert "user_id=2: values differ" in out and "1 check(s) of severity ERROR failed" in out
    assert sql(day, "SELECT count(DISTINCT run_id) FROM features.dq_results") == [(1,)]


def test_checks_of_a_tiered_day_see_what_they_saw_hot(day):
    import tiering
    from tests.support.tiering_data import hot_days

    ch = get_client(day)
    ch.command(  # defects the checks must still find once the day is cold
        "ALTER TABLE features.uv_1m_stream UPDATE events = 2 * events, uv = 2 * uv "
        f"WHERE window_start = {ts('10:00')} SETTINGS mutations_sync = 1"
    )
    ch.command(f"INSERT INTO features.hot_items_5m_stream VALUES ({ts('10:00')}, {ts('10:05')}, 11, 101, 1)")
    before = run_checks(day, D, now=NOW)
    assert ("consistency", "uv_1m") in failed(before) and ("validity_values", "hot_items_5m") in failed(before)

    moved = tiering.run(day, today=date(2026, 2, 18)).moves  # hot_days 7: day D is due
    # the day has no rows of the catalogue features: nothing of theirs to move
    windowed = {
        t for f in STREAM_FEATURES if f.windowed and not f.enriched for t in (f"{f.name}_batch", f"{f.name}_stream")
    }
    assert {m.table for m in moved} == windowed - {"category_clicks_1h_stream"} | {"category_clicks_1h_tiles_stream"}
    assert all(hot_days(day, m.table) == [] for m in moved)

    after = run_checks(day, D, now=NOW)
    assert [(r.check, r.feature, r.passed, r.message, r.sample) for r in after] == [
        (r.check, r.feature, r.passed, r.message, r.sample) for r in before
    ]
    assert [r.metrics for r in after] == [pytest.approx(r.metrics, nan_ok=True) for r in before]
    assert by(after, "consistency", "category_clicks_1h").metrics["stream_rows"] == 12
