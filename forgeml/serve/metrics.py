"""Prometheus metrics for one app: requests, latency, batch sizes, errors (own registry per app)."""
from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ServeMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("forgeml_requests", "HTTP requests by route and status", ["route", "status"], registry=self.registry)
        self.latency = Histogram("forgeml_request_latency_seconds", "Request latency by route", ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_rows = Histogram("forgeml_batch_rows", "Rows per forward pass", buckets=BATCH_BUCKETS, registry=self.registry)
        self.batch_requests = Histogram("forgeml_batch_requests", "Requests per forward pass", buckets=BATCH_BUCKETS, registry=self.registry)
        self.batch_seconds = Histogram("forgeml_batch_seconds", "Forward-pass time per batch", buckets=LATENCY_BUCKETS, registry=self.registry)
        self.errors = Counter("forgeml_errors", "Failed requests by kind", ["kind"], registry=self.registry)
        self.in_flight = Gauge("forgeml_requests_in_flight", "Requests being handled", registry=self.registry)
        self.predicted_rows = Counter("forgeml_predicted_rows", "Rows predicted", registry=self.registry)

    def on_batch(self, rows: int, requests: int, seconds: float) -> None:
        self.batch_rows.observe(rows)
        self.batch_requests.observe(requests)
        self.batch_seconds.observe(seconds)
        self.predicted_rows.inc(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)


# Status → error kind, so dashboards can tell client mistakes from overload and timeouts.
ERROR_KINDS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method", 413: "too_large",
               415: "content_type", 422: "invalid_input", 503: "not_ready", 504: "timeout"}


class MetricsMiddleware:
    """Counts every response by route template (never the raw path: unbounded label values)."""

    def __init__(self, app: Any, metrics: ServeMetrics, known_paths: set[str] | None = None):
        self.app, self.metrics, self.known_paths = app, metrics, known_paths or set()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500
        started = time.perf_counter()

        async def record(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, record)
        finally:
            self.metrics.in_flight.dec()
            route = getattr(scope.get("route"), "path", None)
            route = route or (scope["path"] if scope["path"] in self.known_paths else "unmatched")
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            if status >= 400:
                self.metrics.errors.labels(ERROR_KINDS.get(status, "server" if status >= 500 else "client")).inc()
