"""Every error leaves as JSON `{"error": "<one sentence>"}`, with its HTTP status chosen here and only here.

Views raise what went wrong (`InvalidRequest`, `UnsupportedContentType`, the contract's `PerformanceError`s);
`STATUS` maps each kind to its status. Werkzeug's HTTP errors (404, 405, 413, ...) keep their codes with short
messages of our own; anything unexpected is logged and answered with a generic 500 so internals never reach the
client.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from robojam_format.performance import PerformanceError, TooManyRows
from service.admission import QueueFull, RateLimited, Refused


class InvalidRequest(ValueError):
    """The request's body or fields cannot be used; the message says why in one sentence."""


class UnsupportedContentType(ValueError):
    """The body is in an encoding the endpoint does not read."""


class TooCostly(ValueError):
    """The request asks for more work than one request may (rows x seconds)."""


class BodyTimeout(ValueError):
    """The request body did not arrive within the read deadline (service/worker.py)."""


STATUS: dict[type[Exception], int] = {
    InvalidRequest: 400,
    PerformanceError: 400,
    BodyTimeout: 408,
    TooManyRows: 413,
    TooCostly: 413,
    UnsupportedContentType: 415,
    RateLimited: 429,
    QueueFull: 503,
}


def status_of(exc: Exception) -> int:
    """The status of the most specific kind in STATUS that `exc` is."""
    return next(STATUS[kind] for kind in type(exc).__mro__ if kind in STATUS)


UNEXPECTED = "internal server error; the request was not processed."


def error_body(message: str) -> str:
    """An error reply's JSON text, as `jsonify(error=message)` writes it (compact, ASCII, newline-ended)."""
    return json.dumps({"error": message}, separators=(",", ":")) + "\n"


def client_error(exc: Exception) -> tuple[int, str, dict | None]:
    """Status, message and extra headers of one of the STATUS kinds (a refusal says when to retry)."""
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Refused) else None
    return status_of(exc), str(exc), headers


def unexpected(app: Flask, method: str, path: str) -> str:
    """Log the error being handled, with its traceback; the message the client gets (internals never leave)."""
    app.logger.exception("unhandled error on %s %s", method, path)
    return UNEXPECTED


def error_response(status: int, message: str, headers: dict | None = None) -> Response:
    response = Response(error_body(message), status, mimetype="application/json")
    response.headers.update(headers or {})
    return response


def _shown_path() -> str:
    """The request path as a message may show it: percent-encoded (no markup, quotes or controls), and short."""
    shown = quote(request.path, safe="/-._~")
    return shown if len(shown) <= 100 else shown[:100] + "..."


def _http_message(exc: HTTPException, max_body: int | None) -> str:
    code = exc.code or 500
    if code == 404:
        return f"there is no endpoint at {_shown_path()}."
    if code == 405:
        allowed = ", ".join(sorted(m for m in exc.valid_methods or () if m not in ("HEAD", "OPTIONS")))
        method = quote(request.method[:20], safe="")
        return f"method {method} is not allowed on {_shown_path()}; use {allowed or 'another method'}."
    if code == 413:
        limit = f" of {max_body} bytes" if max_body else ""
        return f"the request body is larger than the limit{limit}."
    return f"{exc.name.lower()}."


def register(app: Flask) -> None:
    def _client_error(exc: Exception):
        return error_response(*client_error(exc))

    for kind in STATUS:
        app.register_error_handler(kind, _client_error)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        headers = {"Allow": ", ".join(exc.valid_methods)} if getattr(exc, "valid_methods", None) else None
        return error_response(exc.code or 500, _http_message(exc, app.config.get("MAX_CONTENT_LENGTH")), headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        return error_response(500, unexpected(app, request.method, request.path))
