"""Operations endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from service import metrics
from service.openapi import document

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """Alive: the process answers HTTP. Says nothing about the model (that is /readyz)."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready: weights loaded and a warm-up inference finished in this process; 503 until then."""
    ready, reason = current_app.extensions["robojam"].readiness.status
    if ready:
        return jsonify(status="ready")
    return jsonify(status="not ready", reason=reason), 503


@bp.get("/metrics")
def prometheus():
    return metrics.render(current_app.config["ROBOJAM_METRICS_DIR"])


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())
