"""POST /api/predict, the MicroJam endpoint: a performance CSV in, a new ~5 s layer out as CSV.

Everything the view needs is here: reading the body in the two encodings the app has used, the request schema
(pydantic), and the contract's CSV rules (`robojam_format.performance`). Errors are raised as what they are;
`service.errors` answers them.

JSON (`Content-Type: application/json`) is the app's encoding. The original server also took form posts whose
`perf` field holds a JSON-encoded string; here every form field holds a JSON value (`seed=42` is the int 42).
Validation is strict (booleans are not numbers, strings are not numbers) and unknown fields are refused, so a
misspelt option such as "temprature" is an error instead of being silently ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import orjson
from flask import Blueprint, Request, Response, current_app, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge

from robojam_format import performance
from service import metrics
from service.admission import Refused, client_address, request_cost
from service.engine import DEFAULT_SIGMA_TEMPERATURE, DEFAULT_TEMPERATURE
from service.errors import BodyTimeout, InvalidRequest, QueueFull, TooCostly, UnsupportedContentType

bp = Blueprint("predict", __name__, url_prefix="/api")

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
TEMPERATURE_MAX = 10.0
SIGMA_TEMPERATURE_MAX = 1.0
SECONDS_MAX = 10.0
SEED_MAX = 2**64 - 1


# ---- the schema ---------------------------------------------------------------------------------------------


class PredictRequest(BaseModel):
    """Body of POST /api/predict."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    perf: str = Field(description="The performance as MicroJam writes it: CSV with a time,x,y,z,moving header.")
    temperature: float = Field(
        DEFAULT_TEMPERATURE, gt=0, le=TEMPERATURE_MAX, description="Softmax temperature of the mixture weights (pi)."
    )
    sigma_temperature: float = Field(
        DEFAULT_SIGMA_TEMPERATURE,
        gt=0,
        le=SIGMA_TEMPERATURE_MAX,
        description="Scale applied to the mixture variances when sampling.",
    )
    seconds: float = Field(5.0, gt=0, le=SECONDS_MAX, description="Length of the generated continuation in seconds.")
    seed: int | None = Field(
        None, ge=0, le=SEED_MAX, description="Random seed; the same seed and input give the same reply."
    )

    @field_validator("seed", mode="before")
    @classmethod
    def _integral_number(cls, value):
        """1.0 is an integer to JSON Schema (and to the OpenAPI document): take it as 1; 1.5 stays refused."""
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value


def describe(error: ValidationError) -> str:
    """The first problem of a ValidationError as one plain sentence naming the field."""
    first = error.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    kind = first["type"]
    if kind == "missing":
        return f"the required field '{field}' is missing."
    if kind == "extra_forbidden":
        allowed = ", ".join(PredictRequest.model_fields)
        return f"unknown field '{field}'; the accepted fields are {allowed}."
    message = first["msg"]
    return f"field '{field}': {message[0].lower()}{message[1:]}."


# ---- reading the body ---------------------------------------------------------------------------------------


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _loads(data: str | bytes):
    """json.loads without NaN/Infinity literals; every failure (syntax, encoding, nesting) is a ValueError."""
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def fields_from_json(data: bytes) -> dict:
    """The fields of a JSON body (an object), or InvalidRequest."""
    try:
        body = _loads(data)
    except ValueError:
        raise InvalidRequest("the request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest('the request body must be a JSON object such as {"perf": "<CSV>"}.')
    return body


def _from_form(req: Request) -> dict:
    if req.files:
        raise InvalidRequest("file uploads are not accepted; send the performance in the 'perf' field.")
    fields = {}
    for name in req.form:
        values = req.form.getlist(name)
        if len(values) > 1:
            raise InvalidRequest(f"form field '{name}' is given {len(values)} times.")
        try:
            fields[name] = _loads(values[0])
        except ValueError:
            raise InvalidRequest(f"form field '{name}' must hold a JSON-encoded value.") from None
    return fields


def read_body(read: Callable[[], bytes]) -> bytes:
    """`read()`'s bytes, its failures as the request errors they are.

    A body the WSGI server cannot decode (e.g. a malformed chunk size) surfaces as the server's own exception type,
    hence the broad except.
    """
    try:
        return read()
    except (TimeoutError, ClientDisconnected):  # stalled past the read deadline (service.worker) or cut short
        raise BodyTimeout("the request body did not arrive in time.") from None
    except HTTPException:
        raise
    except Exception:
        raise InvalidRequest("the request body is malformed and could not be read.") from None


def _read_body(req: Request) -> bytes:
    """The whole body, read once and cached (the form parser reuses it).

    A chunked body has no Content-Length and werkzeug quietly stops reading it at MAX_CONTENT_LENGTH, so one
    that reaches the limit is refused here rather than handed on truncated.
    """
    data = read_body(lambda: req.get_data(cache=True))
    limit = req.max_content_length
    if req.content_length is None and limit is not None and len(data) >= limit:
        raise RequestEntityTooLarge()
    return data


def read_fields(req: Request) -> dict:
    """The request's fields as a plain dict, from JSON or a form post whose fields each hold a JSON value."""
    mimetype = req.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return fields_from_json(_read_body(req))
    if mimetype in FORM_TYPES:
        _read_body(req)
        return _from_form(req)
    shown = mimetype or "none"
    raise UnsupportedContentType(f"Content-Type {shown} is not supported; send application/json.")


def parse_fields(fields: dict, max_rows: int) -> tuple[PredictRequest, np.ndarray]:
    """The validated fields and the cleaned input events."""
    try:
        params = PredictRequest.model_validate(fields)
    except ValidationError as exc:
        raise InvalidRequest(describe(exc)) from None
    events = performance.clean(performance.parse_csv(params.perf, max_rows=max_rows))
    return params, events


def parse_request(req: Request, max_rows: int) -> tuple[PredictRequest, np.ndarray]:
    """The validated fields and the cleaned input events of a Flask request."""
    return parse_fields(read_fields(req), max_rows)


# ---- the view -----------------------------------------------------------------------------------------------


def _check_cost(rows: int, seconds: float, limit: int) -> None:
    if rows * seconds > limit:
        raise TooCostly(
            f"the performance has {rows} rows and asks for {seconds:g} s; rows x seconds must be at most {limit}."
        )


def serve(runtime, config, fields: Callable[[], dict]) -> str:
    """The reply CSV of a request whose fields `fields()` reads: check for room, parse, cap the cost, admit or shed,
    then generate in this worker's batching loop. Shared by the Flask view and the WSGI fast lane
    (service/predict_lane.py); the rate limit is the caller's."""
    try:
        runtime.admission.check_room()  # a full queue refuses before the body is even read
        with runtime.batcher.arriving():
            params, events = parse_fields(fields(), config["ROBOJAM_MAX_ROWS"])
        _check_cost(len(events), params.seconds, config["ROBOJAM_MAX_ROW_SECONDS"])
        ticket = runtime.admission.admit(request_cost(len(events), params.seconds))
    except Refused as refused:
        metrics.count_shed(type(refused).__name__)
        raise
    with ticket:
        try:
            generated = runtime.batcher.generate(
                events,
                seconds=params.seconds,
                temperature=params.temperature,
                sigma_temperature=params.sigma_temperature,
                rng=np.random.default_rng(params.seed),  # per request: no random state shared between requests
                timeout=config["ROBOJAM_TIMEOUT"],
            )
        except TimeoutError:
            metrics.count_shed("Timeout")
            raise QueueFull("the server is at capacity; retry in a moment.") from None
    return performance.format_csv(generated)


def reply_body(csv: str) -> bytes:
    """The success reply's JSON, as `jsonify(response=csv)` writes it (compact, newline-ended; the CSV is ASCII, so
    orjson's UTF-8 is jsonify's ASCII byte for byte), written by orjson: a tenth of json.dumps' time for 4.7 kB."""
    return orjson.dumps({"response": csv}) + b"\n"


@bp.post("/predict")
def predict():
    """Rate limit (optional), then `serve` the request."""
    runtime, config = current_app.extensions["robojam"], current_app.config
    if runtime.limiter is not None:
        forwarded = request.headers.get("X-Forwarded-For")
        try:
            runtime.limiter.check(client_address(request.remote_addr, forwarded, config["ROBOJAM_TRUSTED_PROXIES"]))
        except Refused as refused:
            metrics.count_shed(type(refused).__name__)
            raise
    return Response(reply_body(serve(runtime, config, lambda: read_fields(request))), mimetype="application/json")
