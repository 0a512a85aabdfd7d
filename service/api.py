"""POST /api/predict: the MicroJam endpoint. A performance CSV in, a new ~5 s layer out as CSV."""

from __future__ import annotations

import numpy as np
from flask import Blueprint, current_app, jsonify, request
from pydantic import ValidationError

from service import wire
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


@bp.post("/predict")
def predict():
    params, events = parse_request()
    engine = current_app.extensions["robojam"].engine
    generated = engine.continue_performance(
        events,
        seconds=params.seconds,
        temperature=params.temperature,
        sigma_temperature=params.sigma_temperature,
        rng=np.random.default_rng(params.seed),  # per request: no random state shared between requests
    )
    return jsonify(response=wire.format_performance(generated))
