"""One typed settings object; invalid values fail at start naming the setting."""

import pytest

from common.errors import PlatformError
from common.settings import load_settings


def test_defaults_are_embedded(monkeypatch):
    for k in list(__import__("os").environ):
        if k.startswith("LAMBDA_FEATURES_"):
            monkeypatch.delenv(k)
    s = load_settings()
    assert s.home.name == ".lambda-features" and s.kafka.bootstrap is None and s.redis.url is None
    assert s.stream.watermark_delay_ms == 3000 and s.redis.flush_records == 100 and s.redis.flush_ms == 10


def test_environment_and_file(monkeypatch, tmp_path):
    cfg = tmp_path / "lf.toml"
    cfg.write_text("[stream]\nparallelism = 1\n[redis]\nflush_ms = 25\n")
    monkeypatch.setenv("LAMBDA_FEATURES_CONFIG", str(cfg))
    monkeypatch.setenv("LAMBDA_FEATURES_REDIS__FLUSH_MS", "40")
    s = load_settings()
    assert s.stream.parallelism == 1 and s.redis.flush_ms == 40  # the environment wins over the file


def test_invalid_setting_is_named(monkeypatch):
    monkeypatch.setenv("LAMBDA_FEATURES_STREAM__PARALLELISM", "zero")
    with pytest.raises(PlatformError, match="LAMBDA_FEATURES_STREAM__PARALLELISM"):
        load_settings()


def test_missing_config_file(monkeypatch, tmp_path):
    monkeypatch.setenv("LAMBDA_FEATURES_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(PlatformError, match="not a file"):
        load_settings()
