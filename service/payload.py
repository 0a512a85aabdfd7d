"""Turn a predict request's body into a plain dict of fields, accepting the two encodings the app has used.

JSON (`Content-Type: application/json`) is the app's encoding. The original server also took form posts whose
`perf` field holds a JSON-encoded string; here every form field holds a JSON value (`seed=42` is the int 42).
"""

from __future__ import annotations

import json

from flask import Request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from service.errors import ApiError

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _loads(data: str | bytes):
    """json.loads without NaN/Infinity literals; every failure (syntax, encoding, nesting) is a ValueError."""
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _from_json(data: bytes) -> dict:
    try:
        body = _loads(data)
    except ValueError:
        raise ApiError(400, "the request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, 'the request body must be a JSON object such as {"perf": "<CSV>"}.')
    return body


def _from_form(request: Request) -> dict:
    if request.files:
        raise ApiError(400, "file uploads are not accepted; send the performance in the 'perf' field.")
    fields = {}
    for name in request.form:
        values = request.form.getlist(name)
        if len(values) > 1:
            raise ApiError(400, f"form field '{name}' is given {len(values)} times.")
        try:
            fields[name] = _loads(values[0])
        except ValueError:
            raise ApiError(400, f"form field '{name}' must hold a JSON-encoded value.") from None
    return fields


def _read_body(request: Request) -> bytes:
    """The whole body, read once and cached (the form parser reuses it), or a 400/413.

    A chunked body has no Content-Length and werkzeug quietly stops reading it at MAX_CONTENT_LENGTH, so one
    that reaches the limit is refused here rather than handed on truncated. A body the WSGI server cannot
    decode (e.g. a malformed chunk size) surfaces as the server's own exception type, hence the broad except.
    """
    try:
        data = request.get_data(cache=True)
    except HTTPException:
        raise
    except TimeoutError:  # service.worker.ReadTimeout: the body stalled past the read deadline
        raise ApiError(408, "the request body did not arrive in time.") from None
    except Exception:
        raise ApiError(400, "the request body is malformed and could not be read.") from None
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(data) >= limit:
        raise RequestEntityTooLarge()
    return data


def read_fields(request: Request) -> dict:
    """The request's fields, or ApiError 400/415 (413 via werkzeug) with one sentence saying what is wrong."""
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return _from_json(_read_body(request))
    if mimetype in FORM_TYPES:
        _read_body(request)
        return _from_form(request)
    shown = mimetype or "none"
    raise ApiError(415, f"Content-Type {shown} is not supported; send application/json.")
