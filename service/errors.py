"""Every error leaves as JSON `{"error": "<one sentence>"}`: never an HTML error page or a traceback.

Werkzeug's HTTP errors (404, 405, 413, ...) get short messages of our own; anything unexpected is logged and
answered with a generic 500 so internals never reach the client.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    """A client error with the HTTP status and the one-sentence message to send."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str, headers: dict | None = None):
    response = jsonify(error=message)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _http_message(exc: HTTPException, max_body: int | None) -> str:
    code = exc.code or 500
    if code == 404:
        return f"there is no endpoint at {request.path}."
    if code == 405:
        allowed = ", ".join(sorted(m for m in exc.valid_methods or () if m not in ("HEAD", "OPTIONS")))
        return f"method {request.method} is not allowed on {request.path}; use {allowed or 'another method'}."
    if code == 413:
        limit = f" of {max_body} bytes" if max_body else ""
        return f"the request body is larger than the limit{limit}."
    return f"{exc.name.lower()}."


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        headers = {"Allow": ", ".join(exc.valid_methods)} if getattr(exc, "valid_methods", None) else None
        return error_response(exc.code or 500, _http_message(exc, app.config.get("MAX_CONTENT_LENGTH")), headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal server error; the request was not processed.")
