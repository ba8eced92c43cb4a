"""The Taobao slice through the real pipeline (Flink, Kafka, Redis, chDB), checked
against an independent computation of every feature."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from common.clickhouse import close_clients
from common.lake import feature_day_dir
from common.services import local_services
from features.ecommerce import STREAM_FEATURES
from features.samples import TAOBAO_SAMPLE as TAOBAO
from tests.conftest import isolated_settings, on_shared
from tests.support import reference as ref
from tests.support.pipeline import ms, run_pipeline


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_kafka):
    kafka, _ = on_shared(shared_kafka)
    s = isolated_settings(
        home=tmp_path_factory.mktemp("taobao") / "home",
        kafka=kafka,
    )
    result = run_pipeline(s, "taobao", TAOBAO)
    yield result, ref.accept(result.events)
    close_clients()
    for svc in local_services(s):  # what the batch commands of the tests started
        svc.stop()


def test_counts_and_the_1970_row(run):
    result, accepted = run
    s = result.summary
    assert s.events_in == 96_169  # the last line, without a newline, is the 1970 row
    assert s.stream_dead_letters == 1  # timestamp=15: dead-lettered, no 1970 window
    assert s.archived == len(accepted) == 96_168
    assert s.late == sum(e["late"] for e in accepted)
    assert all(ms(r[0]) > 1_500_000_000_000 for r in result.tables["uv_1m"])


def test_uv_1m(run):
    result, accepted = run
    got = {ms(ws): (uv, n) for ws, _we, uv, n in result.tables["uv_1m"]}
    assert got == ref.uv_1m(accepted)


def test_hot_items_5m(run):
    result, accepted = run
    got: dict[int, list] = {}
    for ws, _we, _rank, item, clicks in sorted(result.tables["hot_items_5m"], key=lambda r: (r[0], r[2])):
        got.setdefault(ms(ws), []).append((item, clicks))
    assert got == ref.hot_items_5m(accepted)


def test_category_clicks_1h(run):
    result, accepted = run
    tiles = {(u, c, ms(ws)): n for u, ws, _we, c, n in result.tables["category_clicks_1h_tiles"]}
    assert tiles == ref.category_tiles(accepted)
    windows = {(u, c, ms(ws)): n for u, ws, _we, c, n in result.tables["category_clicks_1h"]}
    assert windows == ref.category_clicks_1h(accepted)


def test_user_sessions(run):
    result, accepted = run
    got = {(u, ms(a), ms(b), ev, c, ca, p) for u, a, b, ev, c, ca, p in result.tables["user_sessions"]}
    assert got == ref.user_sessions(accepted)


def test_user_state_features_in_clickhouse_and_redis(run):
    result, accepted = run
    last = ref.last_event_time(accepted)
    assert {u: ms(t) for u, t in result.tables["last_event_time"]} == last
    assert {int(k.split(":")[1]): int(v["last_event_time"]) for k, v in result.online.items()} == last
    carts = ref.cart_amount(accepted)
    assert {u: a for u, a, _ in result.tables["cart_amount"]} == carts
    assert all(Decimal(result.online[f"user:{u}"]["cart_amount"]) == a for u, a in carts.items())
    assert result.tables["last_searches"] == []  # no searches in Taobao data


def _normal(rows) -> list[tuple]:
    return sorted(tuple(ms(v) if isinstance(v, datetime) else v for v in r) for r in rows)


def test_batch_reconcile_equals_stream_and_reruns_exactly(run):
    """`batch reconcile` (Spark SQL compiled from the same definitions, over the archive the
    stream wrote) equals the stream for every feature here (no late events); a re-run
    leaves the same rows, even without FINAL; the serving views then show the batch."""
    from common.clickhouse import get_client
    from tests.conftest import run_batch

    result, _ = run
    s = result.settings
    for _ in range(2):
        p = run_batch(s, "reconcile", "--date", "2017-11-26")
        assert p.returncode == 0, p.stdout + p.stderr
    ch = get_client(s)
    for f in STREAM_FEATURES:
        batch = ch.query(f"SELECT * FROM features.{f.name}_batch").result_rows
        assert _normal(batch) == _normal(result.tables[f.name]), f.name
        assert _normal(ch.query(f"SELECT * FROM features.{f.name}").result_rows) == _normal(batch), f.name
    assert list(feature_day_dir(s, "uv_1m", date(2017, 11, 26)).glob("*.parquet"))
