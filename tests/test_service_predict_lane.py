"""The WSGI fast lane for POST /api/predict (service/predict_lane.py) answers exactly as the Flask app does."""

from __future__ import annotations

import io
import json

import pytest
from prometheus_client import REGISTRY
from werkzeug.test import EnvironBuilder, run_wsgi_app

from devtools.performances import app_csv
from devtools.random_weights import write_random_artifact
from service.admission import QueueFull
from service.app import create_app
from service.engine import Engine

PERF = app_csv([(0.05 * i, 0.3 + 0.01 * i, 0.5, 20.0, int(i > 0)) for i in range(40)])


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    return Engine.load(write_random_artifact(tmp_path_factory.mktemp("w") / "w.npz", units=32, mixtures=3))


def environ(body: bytes, content_type: str = "application/json", **headers) -> dict:
    return EnvironBuilder(
        path="/api/predict", method="POST", data=body, content_type=content_type, headers=headers
    ).get_environ()


def answer(wsgi, env: dict) -> tuple[str, list, bytes]:
    """Status line, header list (in order) and body bytes of one request."""
    body, status, headers = run_wsgi_app(wsgi, env)
    return status, list(headers.items()), b"".join(body)


def warmed(app):
    """The app once its process's warm-up inference has run (the first request starts it otherwise)."""
    readiness = app.extensions["robojam"].readiness
    readiness.start()
    assert readiness.wait(60)
    return app


def both(app, body: bytes, **headers) -> tuple[tuple, tuple]:
    """The lane's answer and the Flask app's to the same request, which the lane takes."""
    lane = app.wsgi_app
    assert lane.takes(environ(body, **headers))
    return answer(lane, environ(body, **headers)), answer(lane.flask_wsgi, environ(body, **headers))


BODIES = {
    "typical, seeded": {"perf": PERF, "seed": 3, "seconds": 2.0},
    "invalid JSON": b"{nope",
    "not an object": b"[1, 2]",
    "unknown field": {"perf": PERF, "temprature": 1.0},
    "out of range": {"perf": PERF, "temperature": 0},
    "missing perf": {"seed": 1},
    "bad CSV": {"perf": "time,x,y,z,moving\nnot,a,number,at,all\n"},
    "too many rows": {"perf": app_csv([(0.01 * i, 0.5, 0.5, 20.0, 1) for i in range(600)])},
    "too costly": {"perf": app_csv([(0.01 * i, 0.5, 0.5, 20.0, 1) for i in range(400)]), "seconds": 10.0},
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
@pytest.mark.parametrize("origins", [None, "https://a.example", ""], ids=["any origin", "one origin", "no CORS"])
def test_the_lane_answers_byte_for_byte_as_the_flask_app(engine, body, origins):
    config = {"ROBOJAM_MAX_ROWS": 500, "ROBOJAM_MAX_ROW_SECONDS": 3000}
    if origins is not None:
        config["ROBOJAM_CORS_ORIGINS"] = [origins] if origins else []
    app = create_app(config, engine=engine)
    warmed(app)  # else the first request may share batches with the warm-up (equal only within float32 rounding)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    lane, flask = both(app, data)
    assert lane == flask
    assert ("X-Content-Type-Options", "nosniff") in lane[1]
    assert (origins is None) == (("Access-Control-Allow-Origin", "*") in lane[1])


class Dribble(io.RawIOBase):
    """A server's unbuffered stream: each read returns at most 100 bytes."""

    def __init__(self, data: bytes):
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self.data.read(min(len(buffer), 100))
        buffer[: len(chunk)] = chunk
        return len(chunk)


class Reset(io.RawIOBase):
    """A stream whose client went away with a reset: every read fails."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise ConnectionResetError(104, "Connection reset by peer")


WHOLE = json.dumps({"perf": PERF, "seed": 2, "seconds": 1.0}).encode()
STREAMS = {  # name: (the server's stream, whether it ends the body itself, the status both answer)
    "cut short": (lambda: io.BytesIO(WHOLE[: len(WHOLE) // 2]), False, "408 REQUEST TIMEOUT"),
    "cut short, server-ended": (lambda: io.BytesIO(WHOLE[: len(WHOLE) // 2]), True, "400 BAD REQUEST"),
    "reset": (Reset, False, "408 REQUEST TIMEOUT"),
    "reset, server-ended": (Reset, True, "408 REQUEST TIMEOUT"),
    "100 bytes a read": (lambda: Dribble(WHOLE), False, "200 OK"),
    "100 bytes a read, server-ended": (lambda: Dribble(WHOLE), True, "200 OK"),
}


@pytest.mark.parametrize(("stream", "terminated", "status"), STREAMS.values(), ids=STREAMS.keys())
def test_the_body_is_read_as_the_flask_app_reads_it(engine, stream, terminated, status):
    """werkzeug reads until Content-Length or the stream's end; a shorter body is a client gone (408) unless the
    server ends the stream itself (gunicorn: `wsgi.input_terminated`), and so is a read that fails."""
    app = warmed(create_app(engine=engine))

    def request() -> dict:
        env = environ(WHOLE)
        env["wsgi.input"] = stream()
        if terminated:
            env["wsgi.input_terminated"] = True
        return env

    assert app.wsgi_app.takes(request())
    lane, flask = answer(app.wsgi_app, request()), answer(app.wsgi_app.flask_wsgi, request())
    assert lane == flask and lane[0] == status


def test_a_refusal_keeps_its_status_and_retry_after(engine, monkeypatch):
    app = create_app(engine=engine)

    def full(cost: int = 2) -> None:
        raise QueueFull("the server is at capacity; retry in a moment.")

    monkeypatch.setattr(app.extensions["robojam"].admission, "check_room", full)
    lane, flask = both(app, json.dumps({"perf": PERF}).encode())
    assert lane == flask and lane[0] == "503 SERVICE UNAVAILABLE" and ("Retry-After", "1") in lane[1]


def test_an_unexpected_error_is_the_same_generic_500(engine):
    class Broken:
        precision = "fp32"

        def continue_performance(self, events, **kwargs):
            raise RuntimeError("secret internal detail")

    lane, flask = both(create_app(engine=Broken()), json.dumps({"perf": PERF}).encode())
    assert lane == flask and lane[0].startswith("500 ") and b"secret" not in lane[2]


def test_the_lane_counts_a_request_as_the_app_does(engine):
    app = create_app(engine=engine)
    labels = {"endpoint": "/api/predict", "method": "POST", "status": "200"}

    def served() -> float:
        return REGISTRY.get_sample_value("robojam_http_requests_total", labels) or 0.0

    body = json.dumps({"perf": PERF, "seed": 1, "seconds": 1.0}).encode()
    before = served()
    answer(app.wsgi_app, environ(body))
    after_lane = served()
    answer(app.wsgi_app.flask_wsgi, environ(body))
    assert after_lane - before == served() - after_lane == 1
    assert REGISTRY.get_sample_value("robojam_http_requests_in_flight") == 0


@pytest.mark.parametrize(
    ("content_type", "headers"),
    [
        ("application/json; charset=utf-8", {}),
        ("application/json", {"Origin": "https://a.example"}),
        ("application/x-www-form-urlencoded", {}),
    ],
)
def test_other_requests_go_to_the_flask_app(engine, content_type, headers):
    app = create_app(engine=engine)
    assert not app.wsgi_app.takes(environ(b"{}", content_type=content_type, **headers))
