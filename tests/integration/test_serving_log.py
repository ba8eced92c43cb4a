"""The serving log never holds up a request: with its broker unreachable, every request is
answered and the records it could not keep are counted as dropped. And the comparison's
shapes: a served JSON value and a training-set row meet as the same value."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import orjson

from batch.serving_consistency import offline_value, served_value, smape
from common.repository import load_features
from tests.conftest import free_port, isolated
from tests.support.serving_env import server, stream_rows, write_stream


def _metric(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{name}{re.escape(labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_an_unreachable_broker_costs_log_records_never_answers(tmp_path: Path):
    nobody = free_port()  # nothing listens there
    settings, env = isolated(
        tmp_path / "home",
        LAMBDA_FEATURES_KAFKA__BOOTSTRAP=f"127.0.0.1:{nobody}",
        LAMBDA_FEATURES_SERVING__LOG_SAMPLE_RATE="1",
        LAMBDA_FEATURES_SERVING__LOG_BUFFER="5",
    )
    with server(env, free_port(), tmp_path / "serve.log") as served:
        write_stream(settings, stream_rows(7, int(datetime.now(UTC).timestamp() * 1000), cart="3.50"))
        with httpx.Client(base_url=served.url, timeout=5) as client:
            answers = [
                client.post("/v1/features", json={"user_ids": [7, 8], "features": ["cart_amount"]}) for _ in range(20)
            ]
            metrics = client.get("/metrics").text
    assert [a.status_code for a in answers] == [200] * 20
    assert answers[0].json()["users"][0]["features"]["cart_amount"]["value"] == "3.50"
    logged = _metric(metrics, "lf_serving_log_records_total")
    dropped = _metric(metrics, "lf_serving_log_dropped_total", '{reason="buffer_full"}')
    assert logged == 5 and dropped == 35, metrics  # 2 records a request; the queue holds 5
    assert "serving log" in (tmp_path / "serve.log").read_text()  # the warning at start


def test_served_and_offline_values_compare_in_one_shape(tmp_path: Path):
    settings, _ = isolated(tmp_path / "home")
    f = {x.name: x for x in load_features(settings).features}
    cart, last, searches = f["cart_amount"], f["last_event_time"], f["last_searches"]
    assert served_value(cart, '"12.50"') == offline_value(cart, {"cart_amount": Decimal("12.5")}) == Decimal("12.5")
    t = datetime(2026, 12, 6, 20, 18, 25, 911000)
    assert served_value(last, '"2026-12-06T20:18:25.911Z"') == offline_value(last, {"last_event_time": t})
    assert served_value(searches, orjson.dumps(["a", "b"]).decode()) == offline_value(
        searches, {"last_searches__queries": ["a", "b"]}
    )
    brands, stats = f["top_brands_30d"], f["purchase_stats_30d"]
    ranked = [{"rank": 2, "brand": "b", "purchases": 1}, {"rank": 1, "brand": "a", "purchases": 3}]
    assert served_value(brands, '["a", "b"]') == offline_value(brands, {"top_brands_30d": ranked})
    assert offline_value(brands, {"top_brands_30d": None}) is None
    row = {"purchase_stats_30d__purchases": 2, "purchase_stats_30d__gmv": Decimal("9.00")}
    row |= {"purchase_stats_30d__distinct_items": 2, "purchase_stats_30d__active_days": 1}
    text = '{"purchases": 2, "gmv": "9.00", "distinct_items": 2, "active_days": 1}'
    assert served_value(stats, text) == offline_value(stats, row)
    assert smape(Decimal("10"), Decimal("10")) == 0 and smape(Decimal("3"), Decimal("1")) == 1.0
    assert served_value(cart, None) is None
