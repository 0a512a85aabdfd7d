"""Every error leaves as JSON `{"error": "<one sentence>"}`: never an HTML error page or a traceback.

Werkzeug's HTTP errors (404, 405, 413, ...) get short messages of our own; anything unexpected is logged and
answered with a generic 500 so internals never reach the client.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    """A client error with the HTTP status and the one-sentence message to send."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(status: int, message: str, headers: dict | None = None):
    response = jsonify(error=message)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _shown_path() -> str:
    """The request path as it may appear in a message: percent-encoded (no markup, quotes or controls), short."""
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
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        headers = {"Allow": ", ".join(exc.valid_methods)} if getattr(exc, "valid_methods", None) else None
        return error_response(exc.code or 500, _http_message(exc, app.config.get("MAX_CONTENT_LENGTH")), headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal server error; the request was not processed.")
