"""A WSGI fast lane for the common request, `POST /api/predict` with a JSON body, in front of the Flask app.

Why: Flask's request context, routing and hooks cost about as much CPU as the request's own parsing and formatting
(`make bench-overhead`), so the typical request skips them. The lane takes only a request the Flask app would
answer exactly alike: POST to /api/predict, `Content-Type: application/json`, a Content-Length within
MAX_CONTENT_LENGTH, no Origin or private-network header (so CORS answers as it does for every plain request) and
no rate limit configured; anything else goes to the Flask app untouched. It answers through the view's own
functions (`predict.serve`, `predict.reply_body`), the error table (`errors.client_error`, `errors.error_body`),
the metrics' (`metrics.request_started`, `record`, `request_finished`), and the headers the app's after-request
hooks (CORS, nosniff) add, learnt once from the app itself (`hook_headers`); tests/test_service_predict_lane.py
holds its replies to the Flask app's, byte for byte.
"""

from __future__ import annotations

from flask import Flask, Response
from werkzeug.exceptions import ClientDisconnected
from werkzeug.http import HTTP_STATUS_CODES

from service import errors, metrics, predict

ENDPOINT = "/api/predict"
JSON = "application/json"
# Request headers that change what the Flask app's hooks add (CORS), or how the body is read.
_OTHERWISE = ("HTTP_ORIGIN", "HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK", "HTTP_TRANSFER_ENCODING")


def hook_headers(app: Flask, error: bool) -> list[tuple[str, str]]:
    """The headers the app adds around a predict reply for a request without Origin: its after-request hooks, and
    for an error reply also the error handling (flask-cors adds its headers there first)."""
    with app.test_request_context(ENDPOINT, method="POST"):
        response = app.handle_user_exception(errors.InvalidRequest("")) if error else Response()
        added = app.process_response(response).headers
    return [(name, value) for name, value in added.items() if name not in ("Content-Type", "Content-Length")]


def body_bytes(wsgi_env: dict) -> bytes:
    """The body of a request the lane `takes`, as the Flask request reads it (werkzeug's `get_input_stream`, whose
    LimitedStream reads until Content-Length or the stream's end and turns a read's OSError or ValueError into
    ClientDisconnected; a short body is one too unless the server ends the stream itself, `wsgi.input_terminated`,
    as gunicorn does at Content-Length), without werkzeug's wrapper; `takes` has checked Content-Length against
    MAX_CONTENT_LENGTH."""
    length, stream = int(wsgi_env["CONTENT_LENGTH"]), wsgi_env["wsgi.input"]
    try:
        data = stream.read(length)
        while len(data) < length and (more := stream.read(length - len(data))):
            data += more
    except (OSError, ValueError):
        raise ClientDisconnected() from None
    if len(data) < length and "wsgi.input_terminated" not in wsgi_env:
        raise ClientDisconnected()
    return data


def status_line(code: int) -> str:
    """The status as werkzeug writes it for the Flask app ("400 BAD REQUEST")."""
    return f"{code} {HTTP_STATUS_CODES[code].upper()}"


class PredictLane:
    """The WSGI callable: the fast lane for the requests it takes, the Flask app's `wsgi_app` for the rest."""

    def __init__(self, app: Flask):
        self.app, self.flask_wsgi = app, app.wsgi_app
        self.runtime, self.config = app.extensions["robojam"], app.config
        self.headers = {False: hook_headers(app, False), True: hook_headers(app, True)}  # by error or not

    def takes(self, wsgi_env: dict) -> bool:
        """Whether the Flask app would answer this request just as the lane does."""
        if wsgi_env.get("PATH_INFO") != ENDPOINT or wsgi_env.get("REQUEST_METHOD") != "POST":
            return False
        if wsgi_env.get("CONTENT_TYPE") != JSON or self.runtime.limiter is not None:
            return False
        if any(name in wsgi_env for name in _OTHERWISE):
            return False
        length, limit = wsgi_env.get("CONTENT_LENGTH", ""), self.config["MAX_CONTENT_LENGTH"]
        return length.isascii() and length.isdigit() and (limit is None or int(length) <= limit)

    def __call__(self, wsgi_env: dict, start_response):
        if not self.takes(wsgi_env):
            return self.flask_wsgi(wsgi_env, start_response)
        self.runtime.readiness.start()  # as the app's before-request hook
        start = metrics.request_started()
        try:
            status, data, extra = self._answer(wsgi_env)
            if start is not None:
                metrics.record(ENDPOINT, "POST", status, start)
        finally:
            if start is not None:
                metrics.request_finished()
        extra = list((extra or {}).items())  # after the body's headers and before the hooks', as in the app
        start_response(
            status_line(status),
            [("Content-Type", JSON), ("Content-Length", str(len(data))), *extra, *self.headers[status != 200]],
        )
        return [data]

    def _answer(self, wsgi_env: dict) -> tuple[int, bytes, dict | None]:
        def fields() -> dict:
            return predict.fields_from_json(predict.read_body(lambda: body_bytes(wsgi_env)))

        try:
            return 200, predict.reply_body(predict.serve(self.runtime, self.config, fields)), None
        except tuple(errors.STATUS) as exc:
            status, message, extra = errors.client_error(exc)
        except Exception:
            status, message, extra = 500, errors.unexpected(self.app, "POST", ENDPOINT), None
        return status, errors.error_body(message).encode(), extra
