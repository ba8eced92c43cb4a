"""Prometheus metrics of the API, in a registry of the app's own."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lf_serving_requests", "HTTP requests by route and status", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "lf_serving_request_seconds", "request latency by route", ["route"], buckets=BUCKETS, registry=self.registry
        )
        self.redis = Histogram(
            "lf_serving_redis_seconds", "online store round trips", buckets=BUCKETS, registry=self.registry
        )
        self.redis_errors = Counter(
            "lf_serving_redis_errors", "online store reads that failed or timed out", registry=self.registry
        )
        self.values = Counter(
            "lf_serving_feature_values",
            "feature values served by status",
            ["feature", "status"],
            registry=self.registry,
        )


class MetricsMiddleware:
    """Counts and times every HTTP request (a pure ASGI middleware: no per-request task)."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(name, str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - start)
