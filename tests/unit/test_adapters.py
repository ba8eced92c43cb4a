"""Adapters parse and map; they leave the acceptance rules to the stream job."""

import pytest

from features.adapters import ParseError, parse_jsonl, parse_rees46, parse_taobao, parse_time, read_lines


def test_taobao_maps_behaviours_and_seconds():
    e = parse_taobao("543462,1715,1464116,pv,1511658000", "f:1")
    assert (e["user_id"], e["item_id"], e["category_id"], e["event_type"], e["event_time"]) == (
        543462,
        1715,
        1464116,
        "click",
        1_511_658_000_000,
    )
    assert parse_taobao("1,2,3,buy,4", "x")["event_type"] == "purchase"
    assert parse_taobao("1,2,3,teleport,4", "x")["event_type"] == "teleport"  # rejected later, with reason


@pytest.mark.parametrize("line,msg", [("1,2,3,pv", "expected 5"), ("a,2,3,pv,4", "user_id is not an integer")])
def test_taobao_parse_errors_name_the_problem(line, msg):
    with pytest.raises(ParseError, match=msg):
        parse_taobao(line, "x")


def test_rees46():
    line = "2019-10-01 00:00:00 UTC,remove_from_cart,44600062,2103807459595387724,,Shiseido,35.79,541312140,abc"
    e = parse_rees46(line, "r:2")
    assert e["event_type"] == "remove_cart" and e["brand"] == "shiseido" and e["price"] == 35.79
    assert e["event_time"] == 1_569_888_000_000 and e["item_id"] == 44600062


def test_jsonl_times_and_errors():
    assert (
        parse_jsonl('{"user_id": 1, "event_type": "click", "event_time": "2026-01-01T00:00:00.5+01:00"}', "j:1")[
            "event_time"
        ]
        == 1_767_222_000_500
    )
    assert parse_jsonl('{"user_id": 1, "event_time": 5, "query": "a\\u0001b"}', "j:1")["query"] == "a b"
    with pytest.raises(ParseError, match="no zone"):
        parse_time("2026-01-01T00:00:00")
    with pytest.raises(ParseError, match="not valid JSON"):
        parse_jsonl("{oops", "j:1")


def test_read_lines_keeps_line_numbers_and_reasons():
    rows = list(read_lines("taobao", iter(["1,2,3,pv,4\n", "\n", "bad\n"]), "src"))
    assert [(no, e is None, err is not None) for no, e, _, err in rows] == [(1, False, False), (3, True, True)]
    assert rows[0][1]["event_id"] == "src:1"
