"""The FastAPI app: GET /v1/users/{user_id}/features, POST /v1/features, /health, /metrics."""

import gc
import hmac
import logging
import time
from collections import Counter
from contextlib import asynccontextmanager
from typing import Annotated

import orjson
from fastapi import Depends, FastAPI, HTTPException, Path, Request, Security
from fastapi.responses import Response
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.settings import Settings
from serving.limits import BodyLimitMiddleware
from serving.log import ServingLog
from serving.lookup import CorruptValue, entries, field_layout
from serving.metrics import Metrics, MetricsMiddleware
from serving.models import MAX_ID, BatchResponse, Error, Health, UserFeatures, batch_request
from serving.online_features import ONLINE
from serving.status import Bounds
from serving.store import OnlineStore, StoreUnavailable

log = logging.getLogger(__name__)
ALL = tuple(ONLINE)
UNAVAILABLE = {503: {"model": Error, "description": "Redis refused, or gave no answer within SERVING__REDIS_TIMEOUT_S"}}
CORRUPT = {500: {"model": Error, "description": "a stored value does not decode as its feature's type"}}


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def create_app(settings: Settings) -> FastAPI:
    """The API over the settings' online store."""
    cfg = settings.serving
    stream_max_age_s = cfg.stream_max_age_s or settings.stream.state_ttl_hours * 3600
    metrics = Metrics()
    store: OnlineStore | None = None
    served: ServingLog | None = None

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        nonlocal store, served
        store = OnlineStore(settings)
        served = ServingLog(settings, metrics.registry)
        # The app's own objects (FastAPI, pydantic, the models) never die: out of the
        # collector's sight, a full collection no longer walks them in the middle of a request.
        gc.collect()
        gc.freeze()
        yield
        await store.close()
        served.close()

    app = FastAPI(
        title="lambda-features online features",
        version="1",
        description="Each user's online features from the stream and batch layers (Redis). "
        "Statuses: PRESENT, NOT_FOUND, STALE (see docs/serving.md).",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=cfg.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts 413s too

    guarded: list = []
    if cfg.api_key is not None:
        key = cfg.api_key.get_secret_value().encode()
        header = APIKeyHeader(name="X-API-Key", auto_error=False, description="SERVING__API_KEY")

        def check_key(given: Annotated[str | None, Security(header)]) -> None:
            if given is None or not hmac.compare_digest(given.encode(), key):
                raise HTTPException(401, "missing or wrong X-API-Key header")

        guarded = [Depends(check_key)]
    denied = {401: {"model": Error, "description": "missing or wrong X-API-Key"}} if guarded else {}

    @app.exception_handler(StoreUnavailable)
    async def _unavailable(_: Request, e: StoreUnavailable) -> Response:
        metrics.redis_errors.inc()
        log.warning("%s", e)
        return _json({"detail": str(e)}, 503)

    @app.exception_handler(CorruptValue)
    async def _corrupt(_: Request, e: CorruptValue) -> Response:
        log.error("%s", e)
        return _json({"detail": str(e)}, 500)

    async def lookup(user_ids: list[int], names: tuple[str, ...]) -> list[dict]:
        p = field_layout(names)
        start = time.perf_counter()
        rows, published = await store.hashes(user_ids, p.fields, p.needs_published)  # type: ignore[union-attr]
        metrics.redis.observe(time.perf_counter() - start)
        now = time.time()  # after the read: every value served had reached the store by then
        bounds = Bounds.at(now, stream_max_age_s, cfg.batch_max_age_days)
        out = []
        tally: Counter[tuple[str, str]] = Counter()
        for user, values in zip(user_ids, rows, strict=True):
            try:
                got = entries(p, values, published, bounds)
            except CorruptValue as e:
                raise CorruptValue(f"user {user}, {e}") from None
            tally.update((name, entry["status"]) for name, entry in got.items())
            out.append({"user_id": user, "features": got})
        for (name, status), n in tally.items():
            metrics.values.labels(name, status).inc(n)
        if served.sampled():  # type: ignore[union-attr]
            served.record(int(now * 1000), out)  # type: ignore[union-attr]
        return out

    @app.get(
        "/v1/users/{user_id}/features",
        response_model=UserFeatures,
        dependencies=guarded,
        responses={**denied, **UNAVAILABLE, **CORRUPT},
        summary="every online feature of one user",
    )
    async def user_features(user_id: Annotated[int, Path(ge=-MAX_ID, le=MAX_ID)]) -> Response:
        return _json((await lookup([user_id], ALL))[0])

    body_model = batch_request(cfg.max_users)

    @app.post(
        "/v1/features",
        response_model=BatchResponse,
        dependencies=guarded,
        responses={
            400: {"model": Error, "description": "the body is not JSON"},
            **denied,
            413: {"model": Error, "description": "body over SERVING__MAX_BODY_BYTES"},
            **UNAVAILABLE,
            **CORRUPT,
        },
        summary="some features of many users",
    )
    async def many_features(body: body_model) -> Response:  # type: ignore[valid-type]
        names = tuple(dict.fromkeys(body.features))  # type: ignore[attr-defined]
        return _json({"users": await lookup(body.user_ids, names)})  # type: ignore[attr-defined]

    @app.get("/health", response_model=Health, responses={503: {"model": Health}}, summary="the online store answers")
    async def health() -> Response:
        try:
            await store.ping()  # type: ignore[union-attr]
        except StoreUnavailable as e:
            return _json({"status": "unavailable", "detail": str(e)}, 503)
        return _json({"status": "ok"})

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus"}},
        summary="Prometheus metrics",
    )
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_env() -> FastAPI:
    """The app on the process's settings (uvicorn's factory for several workers)."""
    from common.settings import load_settings

    return create_app(load_settings())
