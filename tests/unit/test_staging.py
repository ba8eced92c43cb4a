"""Staging keeps every line: events with their position, the rest as dead letters."""

import orjson
import pytest

from common.errors import PlatformError
from streaming.staging import stage_files


def test_stage_and_dead_letters(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("1,2,3,pv,100\nnot,a,row\n4,5,6,cart,200\n")
    r = stage_files("taobao", [src], tmp_path / "staged.csv", tmp_path / "dl")
    assert (r.events, r.dead_letters) == (2, 1)
    assert r.path.read_text().splitlines()[1].startswith("0,3,in:3,4,5,6,")
    dead = orjson.loads(r.dead_letter_path.read_bytes().splitlines()[0])
    assert dead["line"] == 2 and dead["source"] == str(src) and "expected 5" in dead["reason"]


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(PlatformError, match="input file not found"):
        stage_files("taobao", [tmp_path / "nope.csv"], tmp_path / "s.csv", tmp_path / "dl")
    with pytest.raises(PlatformError, match="unknown format"):
        stage_files("parquet", [], tmp_path / "s.csv", tmp_path / "dl")
