"""POST /api/predict: the MicroJam endpoint. A performance CSV in, a new ~5 s layer out as CSV."""

from __future__ import annotations

import numpy as np
from flask import Blueprint, current_app, jsonify, request
from pydantic import ValidationError

from service import metrics, wire
from service.admission import Refused, client_address, request_cost
from service.errors import ApiError
from service.payload import read_fields
from service.schemas import PredictRequest, describe

bp = Blueprint("api", __name__, url_prefix="/api")


def parse_request() -> tuple[PredictRequest, np.ndarray]:
    """The validated fields and the cleaned input events, or ApiError with one sentence."""
    fields = read_fields(request)
    try:
        params = PredictRequest.model_validate(fields)
    except ValidationError as exc:
        raise ApiError(400, describe(exc)) from None
    try:
        events = wire.parse_performance(params.perf, current_app.config["ROBOJAM_MAX_ROWS"])
    except wire.WireError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return params, events


def _refused(refusal: Refused) -> ApiError:
    metrics.count_shed("rate_limit" if refusal.status == 429 else "queue_full")
    return ApiError(refusal.status, refusal.message, {"Retry-After": str(refusal.retry_after)})


def _check_size(rows: int, seconds: float) -> None:
    limit = current_app.config["ROBOJAM_MAX_ROW_SECONDS"]
    if rows * seconds > limit:
        raise ApiError(
            413, f"the performance has {rows} rows and asks for {seconds:g} s; rows x seconds must be at most {limit}."
        )


@bp.post("/predict")
def predict():
    runtime = current_app.extensions["robojam"]
    config = current_app.config
    if runtime.limiter is not None:
        client = client_address(request.remote_addr, request.headers.get("X-Forwarded-For"),
                                config["ROBOJAM_TRUSTED_PROXIES"])  # fmt: skip
        try:
            runtime.limiter.check(client)
        except Refused as refusal:
            raise _refused(refusal) from None
    with runtime.batcher.arriving():
        params, events = parse_request()
    _check_size(len(events), params.seconds)
    try:
        ticket = runtime.admission.admit(request_cost(len(events), params.seconds))
    except Refused as refusal:
        raise _refused(refusal) from None
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
            raise _refused(Refused(503, "the server is at capacity; retry in a moment.")) from None
    return jsonify(response=wire.format_performance(generated))
