"""Every command that needs an embedded service starts it: each runs here in a fresh home
with no service running (real Spark, chDB service, redis-server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta

from common.redis_store import get_redis, user_key
from tests.conftest import REPO, isolated, stop_local_services
from tests.support.archive import at, write_archive

D = date(2026, 3, 2)


def purchase(user: int, brand: str, hour: int) -> dict:
    return {
        "user_id": user,
        "event_type": "purchase",
        "item_id": 10 + user,
        "category_id": 1,
        "brand": brand,
        "price": 5.0,
        "event_time": at(D, hour),
    }


def test_each_command_starts_what_it_needs(tmp_path):
    home = tmp_path / "home"
    s, env = isolated(home)
    write_archive(s, [purchase(1, "acme", 9), purchase(1, "acme", 10), purchase(2, "zeta", 11)])
    full = {k: v for k, v in os.environ.items() if not k.startswith("LAMBDA_FEATURES_")} | env
    commands = [
        (["sql", "SELECT 1 AS one"], {"clickhouse"}),
        (["batch", "backfill", "--start", str(D), "--end", str(D)], {"clickhouse", "redis"}),
        (["batch", "features-30d", "--date", str(D)], {"clickhouse", "redis"}),
        (["batch", "publish", "--date", str(D)], {"redis"}),
        (["dq", "--date", str(D)], {"clickhouse"}),
        (["tier", "run", "--today", str(D + timedelta(days=30))], {"clickhouse"}),
    ]
    try:
        for args, needs in commands:
            stop_local_services(home)
            assert not list(home.glob("run/*.pid")), "a service is still running before the command"
            r = subprocess.run(
                [sys.executable, "-m", "cli.main", *args],
                cwd=REPO,
                env=full,
                capture_output=True,
                text=True,
                timeout=600,
            )
            out = " ".join((r.stdout + r.stderr).split())
            # dq exits 1 when an ERROR check fails (no stream rows here): a verdict, not a failure to run
            assert r.returncode in ((0, 1) if args[0] == "dq" else (0,)), f"{args}: {out[-2000:]}"
            for name in needs:
                assert f"started the local {name}" in out, f"{args} did not start {name}: {out[-2000:]}"
        assert json.loads(get_redis(s).hget(user_key(s, 1), "top_brands_30d")) == ["acme"]
    finally:
        stop_local_services(home)
