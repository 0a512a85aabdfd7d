"""Prometheus metrics: requests by status, latency histogram and requests in flight.

Under gunicorn every worker is its own process, so the config module sets PROMETHEUS_MULTIPROC_DIR
(service.settings.prepare_metrics_dir) before the app is imported; prometheus-client keeps values in per-process
files and /metrics sums them over workers.
Endpoint labels come from the matched URL rule (or "unmatched"), so probing random paths adds no series.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "robojam_http_requests_total",
    "HTTP requests answered, by endpoint, method and status.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "robojam_http_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_FLIGHT = Gauge(
    "robojam_http_requests_in_flight",
    "HTTP requests being answered now.",
    multiprocess_mode="livesum",
)


def _endpoint() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def render(multiprocess_dir: str | None) -> Response:
    """The exposition text, summed over all worker processes when running multiprocess (settings: the dir)."""
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    @app.before_request
    def _start():
        g.metrics_start = time.perf_counter()
        IN_FLIGHT.inc()

    @app.after_request
    def _record(response):
        start = g.get("metrics_start")
        if start is not None:
            endpoint = _endpoint()
            LATENCY.labels(endpoint).observe(time.perf_counter() - start)
            REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        return response

    @app.teardown_request
    def _finish(_exc):
        if g.pop("metrics_start", None) is not None:
            IN_FLIGHT.dec()
