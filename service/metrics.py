"""Prometheus metrics: requests by status, latency, requests in flight, batch sizes, the admission queue and the
engine's precision (an info-style gauge).

Under gunicorn every worker is its own process, so the config module sets PROMETHEUS_MULTIPROC_DIR
(service.settings.prepare_metrics_dir) before the app is imported; prometheus-client keeps values in per-process
files and /metrics sums them over workers.
Every label value comes from a fixed set, so no client can add series: endpoints are the matched URL rule (or
"unmatched"), methods outside METHODS are "other". A worker whose metric files could not be reserved
(service/metrics_space.py) runs with metrics off (`disable`) rather than risk SIGBUS on a full tmpfs.
"""

from __future__ import annotations

import logging
import os
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

from service.settings import PRECISIONS

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

BATCH_SIZE = Histogram(
    "robojam_batch_size",
    "Requests advanced together in one iteration of the batching loop (a lone request's run counts once).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
QUEUE_REQUESTS = Gauge(
    "robojam_queue_requests",
    "Predict requests admitted (queued or running), summed over workers.",
    multiprocess_mode="livesum",
)
QUEUE_COST = Gauge(
    "robojam_queue_cost_steps",
    "Cost of the admitted predict requests in LSTM steps, summed over workers.",
    multiprocess_mode="livesum",
)
PRECISION = Gauge(
    "robojam_model_precision_info",
    "The arithmetic the engine serves with (ROBOJAM_PRECISION): 1 for the precision in use.",
    ["precision"],
    multiprocess_mode="max",
)
SHED = Counter("robojam_requests_shed_total", "Predict requests refused by admission, by reason.", ["reason"])
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_state = {"enabled": True}


def disable(reason: str) -> None:
    """Stop recording in this process (its metric files could not be reserved); serving goes on."""
    _state["enabled"] = False
    logging.getLogger(__name__).warning("metrics are off in process %d: %s", os.getpid(), reason)


def enabled() -> bool:
    return _state["enabled"]


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def observe_batch(size: int) -> None:
    if _state["enabled"]:
        BATCH_SIZE.observe(size)


def set_queue(requests: int, cost: int) -> None:
    if _state["enabled"]:
        QUEUE_REQUESTS.set(requests)
        QUEUE_COST.set(cost)


def count_shed(reason: str) -> None:
    if _state["enabled"]:
        SHED.labels(reason).inc()


def _endpoint() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


class _Children:
    """Each labelled metric's child per label values, looked up once (`labels()` costs microseconds a call); the
    label values come from fixed sets, so this stays small. A child follows its process across a fork."""

    def __init__(self, metric):
        self._metric, self._children = metric, {}

    def __call__(self, *values: str):
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


_latency, _requests = _Children(LATENCY), _Children(REQUESTS)


def render(multiprocess_dir: str | None) -> Response:
    """The exposition text, summed over all worker processes when running multiprocess (settings: the dir)."""
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry = REGISTRY
    try:
        text = generate_latest(registry)
    except (OSError, ValueError) as exc:  # the metrics directory vanished or holds a damaged file
        logging.getLogger(__name__).warning("metrics could not be read: %s", exc)
        return Response('{"error": "metrics are unavailable right now."}\n', 503, mimetype="application/json")
    return Response(text, content_type=CONTENT_TYPE_LATEST)


def request_started() -> float | None:
    """A request begins: counted in flight, its start time returned (None while metrics are off)."""
    if not _state["enabled"]:
        return None
    IN_FLIGHT.inc()
    return time.perf_counter()


def record(endpoint: str, method: str, status: int, start: float) -> None:
    """A request started at `start` (`request_started`) is answered with `status`: its latency and count."""
    _latency(endpoint).observe(time.perf_counter() - start)
    _requests(endpoint, method_label(method), str(status)).inc()


def request_finished() -> None:
    """A request that `request_started` counted is no longer in flight."""
    IN_FLIGHT.dec()


def init_app(app: Flask, precision: str) -> None:
    if _state["enabled"]:
        for name in PRECISIONS:
            PRECISION.labels(name).set(1 if name == precision else 0)

    @app.before_request
    def _start():
        start = request_started()
        if start is not None:
            g.metrics_start = start

    @app.after_request
    def _record(response):
        start = g.get("metrics_start")
        if start is not None:
            record(_endpoint(), request.method, response.status_code, start)
        return response

    @app.teardown_request
    def _finish(_exc):
        if g.pop("metrics_start", None) is not None:
            request_finished()
