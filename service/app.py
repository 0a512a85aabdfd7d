"""The application factory: `create_app()` loads the weights once and wires the blueprints together.

gunicorn (service/gunicorn_conf.py) preloads it in the master so all workers share the read-only weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flask import Flask
from flask_cors import CORS

from robojam_format.performance import format_csv
from service import errors, metrics, model_info, ops, predict, settings, web
from service.admission import Admission, RateLimiter
from service.batcher import Batcher
from service.engine import Engine
from service.predict_lane import PredictLane
from service.readiness import Readiness

# A short two-gesture performance; the warm-up runs the same conditioning + 5 s generation path as a request.
_WARM_UP_EVENTS = np.array(
    [[0.2 + 0.02 * i, 0.5, 0.0 if i == 0 else 0.05] for i in range(10)]
    + [[0.7, 0.2 + 0.03 * i, 0.4 if i == 0 else 0.04] for i in range(10)],
    dtype=np.float32,
)


@dataclass(frozen=True)
class Runtime:
    """What the views need, kept in app.extensions["robojam"]."""

    engine: Engine
    readiness: Readiness
    batcher: Batcher
    admission: Admission
    limiter: RateLimiter | None


def _warm_up(batcher: Batcher) -> None:
    """One request through this process's batching loop (which also starts the loop)."""
    generated = batcher.generate(_WARM_UP_EVENTS, rng=np.random.default_rng(0))
    format_csv(generated)


def _security_headers(response):
    response.headers["X-Content-Type-Options"] = "nosniff"  # JSON and CSV are never to be sniffed as HTML
    return response


def start_warm_up(app: Flask) -> None:
    """Begin this process's warm-up now (gunicorn calls it after forking a worker); idempotent."""
    runtime = getattr(app, "extensions", {}).get("robojam")
    if runtime is not None:
        runtime.readiness.start()


def create_app(config: dict | None = None, *, engine: Engine | None = None) -> Flask:
    """Build the app. `config` overrides the environment-derived settings (see service.settings); `engine`, an
    already loaded engine, skips loading the weights file."""
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(settings.from_env())
    app.config.update(config or {})
    app.json.sort_keys = False

    weights = None  # the file this app loaded, if it loaded one (GET /api/model reports its checksum)
    if engine is None:
        weights = Path(app.config["ROBOJAM_WEIGHTS"])
        engine = Engine.load(weights, app.config["ROBOJAM_PRECISION"])
    batcher = Batcher(engine, app.config["ROBOJAM_BATCH_POLICY"], observe_batch=metrics.observe_batch)
    readiness = Readiness(lambda: _warm_up(batcher))
    admission = Admission(
        app.config["ROBOJAM_QUEUE_COST"],
        on_change=metrics.set_queue,
        target_seconds=app.config["ROBOJAM_QUEUE_MS"] / 1000.0,
    )
    per_minute = app.config["ROBOJAM_RATE_LIMIT"]
    limiter = RateLimiter(per_minute, app.config["ROBOJAM_RATE_BURST"]) if per_minute else None
    app.extensions["robojam"] = Runtime(engine, readiness, batcher, admission, limiter)

    origins = app.config["ROBOJAM_CORS_ORIGINS"]
    if origins:
        CORS(
            app,
            resources={r"/api/*": {"origins": origins}},
            methods=["POST", "OPTIONS"],
            max_age=600,
            send_wildcard=origins == ["*"],  # answer a literal "*" as the original server did
        )

    metrics.init_app(app, engine.precision)  # first, so its timing covers the other hooks
    app.after_request(_security_headers)
    app.before_request(readiness.start)
    errors.register(app)
    app.register_blueprint(predict.bp)
    app.register_blueprint(ops.bp)
    model_info.init_app(app, weights)
    app.register_blueprint(web.bp)
    app.wsgi_app = PredictLane(app)  # the typical predict request skips Flask's dispatch, answered alike
    return app
