"""`lambda-features serve`: the online feature API (FastAPI on uvicorn)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cli.console import console, settings
from common.errors import PlatformError
from common.settings import ENV_PREFIX, load_settings


def serve(
    host: Annotated[str | None, typer.Option(help="bind address; default SERVING__HOST (127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="default SERVING__PORT (8600)")] = None,
    workers: Annotated[int | None, typer.Option(help="uvicorn worker processes; default SERVING__WORKERS")] = None,
) -> None:
    """Serve every user's online features over HTTP until Ctrl-C or SIGTERM; see docs/serving.md."""
    import uvicorn

    from common.kafka import ensure_topics
    from common.redis_store import redis_where
    from common.services import ensure_running, kafka_service, redis_service

    given = {k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None}
    settings()  # logging as every command sets it up
    s = load_settings(serving=given)
    if not s.redis.url:  # the platform's local online store; it keeps running after serve stops
        ensure_running(redis_service(s))
    cfg = s.serving
    if cfg.log_sample_rate > 0:  # the serving log's topic, on the platform's broker unless one is set
        if not s.kafka.bootstrap:
            ensure_running(kafka_service(s))
        try:
            ensure_topics(s, [cfg.log_topic], s.kafka.partitions)
        except PlatformError as e:  # the log waits for the broker; requests never do
            console.print(f"[yellow]serving log: {e.what}; its records are dropped while it lasts")
    console.print(
        f"serving {redis_where(s)} on http://{cfg.host}:{cfg.port} "
        f"({cfg.workers} worker{'s' if cfg.workers > 1 else ''}; "
        f"API key {'required' if cfg.api_key else 'off'}; OpenAPI at /openapi.json; "
        + (f"logging {cfg.log_sample_rate:.0%} of requests to {cfg.log_topic})" if cfg.log_sample_rate else "log off)")
    )
    common = {"host": cfg.host, "port": cfg.port, "access_log": False, "log_level": "warning"}
    if cfg.workers == 1:
        from serving.api import create_app

        uvicorn.run(create_app(s), **common)
    else:  # each worker builds the app from the environment: hand it the command line's choices
        for k, v in given.items():
            os.environ[f"{ENV_PREFIX}SERVING__{k.upper()}"] = str(v)
        uvicorn.run("serving.api:app_from_env", factory=True, workers=cfg.workers, **common)
