"""training-set's bad input: one clear message naming what is wrong, exit status 2, no
traceback. Names and columns are checked before Spark starts; values once Spark reads them."""

from __future__ import annotations

from tests.e2e.test_cli_errors import run_cli


def check_clear_error(p, text: str) -> None:
    """Exit status 2 and the text in the message, however the console wrapped its lines."""
    assert p.returncode == 2, p.stdout + p.stderr
    assert text in " ".join(p.stdout.split()) and "Traceback" not in p.stdout + p.stderr, p.stdout


def spine(tmp_path, text: str):
    p = tmp_path / "spine.csv"
    p.write_text(text)
    return str(p)


def test_unknown_feature(tmp_path):
    args = ["--spine", spine(tmp_path, "user_id,ts\n1,1767225600000\n"), "--out", str(tmp_path / "o.parquet")]
    p = run_cli(["training-set", *args, "--features", "cart_amount,cart_total"], tmp_path)
    check_clear_error(p, "unknown feature(s): cart_total")
    assert "last_searches" in p.stdout  # the known ones are listed


def test_missing_ts_column(tmp_path):
    args = ["--spine", spine(tmp_path, "user_id,when,label\n1,1767225600000,1\n"), "--features", "cart_amount"]
    p = run_cli(["training-set", *args, "--out", str(tmp_path / "o.parquet")], tmp_path)
    check_clear_error(p, "has no `ts` column")
    assert "(it has: user_id, when, label)" in " ".join(p.stdout.split())


def test_missing_spine_and_existing_out(tmp_path):
    args = ["--features", "cart_amount", "--out", str(tmp_path / "o.parquet")]
    check_clear_error(run_cli(["training-set", "--spine", str(tmp_path / "nope.csv"), *args], tmp_path), "no spine")
    (tmp_path / "o.parquet").mkdir()
    p = run_cli(["training-set", "--spine", spine(tmp_path, "user_id,ts\n1,2\n"), *args], tmp_path)
    check_clear_error(p, "already exists")


def test_unreadable_ts_and_missing_lake_days(tmp_path):
    """Checked in Spark: a ts that is no time, then 30-day features the lake does not have."""
    args = ["--features", "cart_amount,top_brands_30d"]
    bad = spine(tmp_path, "user_id,ts\n1,2026-01-02T10:00:00Z\n2,yesterday\n")
    p = run_cli(["training-set", "--spine", bad, *args, "--out", str(tmp_path / "a.parquet")], tmp_path)
    check_clear_error(p, "1 of 2 spine rows")
    good = spine(tmp_path, "user_id,ts\n1,2026-01-02T10:00:00Z\n")
    p = run_cli(["training-set", "--spine", good, *args, "--out", str(tmp_path / "b.parquet")], tmp_path)
    check_clear_error(p, "top_brands_30d is not in the lake as of 2026-01-01")
    assert "batch backfill --start 2026-01-01 --end 2026-01-01" in " ".join(p.stdout.split())
