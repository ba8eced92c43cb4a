"""Tiering against a real S3 API (moto server on 127.0.0.1): multipart uploads, chDB's s3()
reading back, identical answers, crashes between steps, and bad credentials or buckets."""

from __future__ import annotations

import uuid
from datetime import date

import boto3
import pytest

import tiering
from common.clickhouse import close_clients, get_client, row_checksum
from common.errors import PlatformError
from tests.conftest import cli, env_of, isolated_settings
from tests.support.moto_server import CREDENTIALS, moto_server
from tests.support.tiering_data import DUE_DAYS, TODAY, answers, hot_days, seed
from tiering import manifest
from tiering.partitions import hot_fingerprint


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def aws(monkeypatch):
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)


def s3(endpoint: str, **creds: str):
    return boto3.client("s3", endpoint_url=endpoint, **creds)


@pytest.fixture
def bucket(endpoint, aws):
    name = f"lf-{uuid.uuid4().hex[:12]}"
    s3(endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def tier_settings(tmp_path, endpoint, bucket):
    yield isolated_settings(
        home=tmp_path / "home",
        tiering={"bucket": bucket, "endpoint_url": endpoint},
    )
    close_clients()


def keys(endpoint: str, bucket: str) -> list[str]:
    pages = s3(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def test_views_identical_after_moving_to_s3_and_after_restore(tier_settings, endpoint, bucket):
    s = tier_settings
    seed(s)
    before = answers(s)
    report = tiering.run(s, today=TODAY)
    assert report.moves and all(m.uri.startswith(f"s3://{bucket}/features/") for m in report.moves)
    assert keys(endpoint, bucket) == sorted(k for e in manifest.entries(s) for k in e.objects)
    assert "features/uv_1m_stream/dt=2024-01-01/part-00000.parquet" in keys(endpoint, bucket)
    assert hot_days(s, "uv_1m_stream") == [date(2024, 1, 4), date(2024, 1, 5)]
    assert answers(s) == before
    assert [c for c in tiering.verify(s) if not c.ok] == []
    assert tiering.restore(s, "category_clicks_1h_tiles_stream", DUE_DAYS[2]) > 0
    assert not [k for k in keys(endpoint, bucket) if "category_clicks_1h_tiles_stream/dt=2024-01-03" in k]
    assert answers(s) == before


def test_large_partition_goes_up_in_parts_and_chdb_reads_it_back(tmp_path, endpoint, bucket):
    s = isolated_settings(
        home=tmp_path / "home",
        tiering={"bucket": bucket, "endpoint_url": endpoint, "multipart_threshold_mb": 5, "multipart_chunk_mb": 5},
    )
    c = get_client(s)
    tiering.run(s, today=TODAY)  # creates the tables; nothing due yet
    c.command(  # random 64-bit values do not compress: ~10 MB of Parquet in one day
        "INSERT INTO features.category_clicks_1h_tiles_stream SELECT rand64() % 100000, "
        "toDateTime64('2024-01-01 00:00:00', 3, 'UTC') + (number % 288) * 300 AS ws, ws + 300, rand64(), rand64() "
        "FROM numbers(400000)"
    )
    rows, checksum = hot_fingerprint(s, "category_clicks_1h_tiles_stream", date(2024, 1, 1))
    (move,) = tiering.run(s, today=TODAY).moves
    assert (move.rows, move.objects) == (rows, 1) and move.bytes > 5 * 1024 * 1024
    key = "features/category_clicks_1h_tiles_stream/dt=2024-01-01/part-00000.parquet"
    etag = s3(endpoint).head_object(Bucket=bucket, Key=key)["ETag"]
    assert "-" in etag.strip('"')  # a multipart upload's ETag is "<md5 of part md5s>-<parts>"
    url = f"{endpoint}/{bucket}/{key}"
    cols = ("user_id", "window_start", "window_end", "category_id", "clicks")
    got = c.query(
        f"SELECT count(), {row_checksum(cols)} FROM s3('{url}', 'testing', 'testing', 'Parquet', "
        "'user_id Int64, window_start DateTime64(3, \\'UTC\\'), window_end DateTime64(3, \\'UTC\\'), "
        "category_id Nullable(Int64), clicks Int64')"
    ).result_rows
    assert got == [(rows, checksum)]
    close_clients()


def test_a_partial_object_is_caught_and_the_hot_day_kept(tier_settings, endpoint, bucket):
    s = tier_settings
    seed(s)
    before = answers(s)
    hot = hot_fingerprint(s, "uv_1m_stream", DUE_DAYS[0])

    def truncate(step: str, table: str, day: date) -> None:
        if step == "written" and table == "uv_1m_stream":
            key = f"features/{table}/dt={day}/part-00000.parquet"
            body = s3(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()
            s3(endpoint).put_object(Bucket=bucket, Key=key, Body=body[: len(body) // 2])

    with pytest.raises(PlatformError, match="uv_1m_stream/dt=2024-01-01/"):
        tiering.run(s, today=TODAY, hook=truncate)
    assert hot_fingerprint(s, "uv_1m_stream", DUE_DAYS[0]) == hot
    assert manifest.get(s, "uv_1m_stream", DUE_DAYS[0]).state == "moving"
    assert answers(s) == before
    tiering.run(s, today=TODAY)  # once the store behaves, a re-run completes
    assert answers(s) == before
    assert all(c.ok for c in tiering.verify(s))


def test_missing_credentials_bucket_and_access_denied_leave_hot_data(tmp_path, endpoint, bucket, monkeypatch):
    s = isolated_settings(
        home=tmp_path / "home",
        tiering={"bucket": "lf-no-such-bucket", "endpoint_url": endpoint},
    )
    seed(s)
    with pytest.raises(PlatformError, match="bucket 'lf-no-such-bucket' does not exist") as e:
        tiering.run(s, today=TODAY)
    assert "LAMBDA_FEATURES_TIERING__BUCKET" in e.value.fix
    assert hot_days(s, "uv_1m_stream") == [date(2024, 1, d) for d in range(1, 6)]

    for k in CREDENTIALS:
        monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s = s.model_copy(update={"tiering": s.tiering.model_copy(update={"bucket": bucket})})
    with pytest.raises(PlatformError, match=f"no credentials for s3://{bucket}") as e:
        tiering.run(s, today=TODAY)
    assert "AWS_ACCESS_KEY_ID" in e.value.fix
    assert hot_days(s, "uv_1m_stream") == [date(2024, 1, d) for d in range(1, 6)]
    close_clients()


def test_access_denied_names_the_bucket(tmp_path, monkeypatch):
    # moto enforces IAM after its first 3 requests: bucket, user, key; the user may do nothing
    with moto_server(INITIAL_NO_AUTH_ACTION_COUNT="3") as url:
        admin = {"aws_access_key_id": "AKIAADMIN", "aws_secret_access_key": "x", "region_name": "us-east-1"}
        s3(url, **admin).create_bucket(Bucket="lf-locked")
        iam = boto3.client("iam", endpoint_url=url, **admin)
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        s = isolated_settings(
            home=tmp_path / "home",
            tiering={"bucket": "lf-locked", "endpoint_url": url},
        )
        seed(s)
        with pytest.raises(PlatformError, match=r"access denied to s3://lf-locked/ \(403\)"):
            tiering.run(s, today=TODAY)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN")
        with pytest.raises(PlatformError, match="access denied to s3://lf-locked/"):
            tiering.run(s, today=TODAY)
        assert hot_days(s, "uv_1m_stream") == [date(2024, 1, d) for d in range(1, 6)]
        close_clients()


def _tier(settings, endpoint: str, bucket: str, *args: str, crash_at: str | None = None) -> tuple[int, str]:
    """`lambda-features tier ARGS` in its own process, optionally SIGKILLed after a step."""
    close_clients()  # the child opens chDB
    env = (
        env_of(settings)
        | CREDENTIALS
        | {
            "LAMBDA_FEATURES_TIERING__BUCKET": bucket,
            "LAMBDA_FEATURES_TIERING__ENDPOINT_URL": endpoint,
            "LAMBDA_FEATURES_TIERING__ROWS_PER_OBJECT": "1000",
        }
    )
    if crash_at:
        env["LF_TEST_CRASH_AT"] = crash_at
    proc = cli(["tier", *args], env)
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out.decode()


def test_killed_between_any_two_steps_a_rerun_loses_and_duplicates_nothing(tier_settings, endpoint, bucket):
    s = tier_settings
    seed(s)
    before = answers(s)
    for step in ("exported", "written", "verified", "recorded", "dropped"):
        code, out = _tier(s, endpoint, bucket, "run", "--today", str(TODAY), crash_at=step)
        assert code == -9, out  # SIGKILL, for real
        assert answers(s) == before, f"after a crash at {step}"
    code, out = _tier(s, endpoint, bucket, "run", "--today", str(TODAY))
    assert code == 0, out
    assert answers(s) == before
    assert [c for c in tiering.verify(s) if not c.ok] == []
    cold = [e for e in manifest.entries(s) if e.state == "cold"]
    assert keys(endpoint, bucket) == sorted(k for e in cold for k in e.objects)  # no stray or duplicate objects
    assert all(hot_days(s, t) == [] or min(hot_days(s, t)) >= date(2024, 1, 4) for t in {e.table for e in cold})

    for step in ("inserted", "recorded"):
        code, out = _tier(
            s, endpoint, bucket, "restore", "--table", "uv_1m_stream", "--date", "2024-01-01", crash_at=step
        )
        assert code == -9, out
        assert answers(s) == before, f"after a crash at {step} of a restore"
    code, out = _tier(s, endpoint, bucket, "restore", "--table", "uv_1m_stream", "--date", "2024-01-01")
    assert code == 0 and "1,440 rows" in out, out
    assert answers(s) == before
    assert hot_fingerprint(s, "uv_1m_stream", date(2024, 1, 1))[0] == 1440
    assert not [k for k in keys(endpoint, bucket) if "uv_1m_stream/dt=2024-01-01" in k]


def test_cli_names_a_missing_bucket(tier_settings, endpoint):
    code, out = _tier(tier_settings, endpoint, "lf-absent", "run", "--dry-run")
    assert code == 2 and "bucket 'lf-absent' does not exist" in out, out
