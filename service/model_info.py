"""GET /api/model: what this server is serving (sizes, parameter count, validation NLL, artifact checksum, precision).

The checksum is the sha256 of the weights file, computed once when the app loads it, so it can be compared with
`sha256sum model/weights/robojam.npz` to tell which artifact a deployment runs. An engine handed to the app
in-process (tests) has no file the app read, so its checksum is null rather than a guess.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from flask import Blueprint, Flask, current_app, jsonify
from pydantic import BaseModel, Field

from robojam_format.artifact import expected_shapes

EXTENSION = "robojam_model_file"

bp = Blueprint("model_info", __name__, url_prefix="/api")


class ModelInfo(BaseModel):
    """Body of GET /api/model."""

    units: int = Field(description="LSTM units per layer.")
    layers: int = Field(description="Number of LSTM layers.")
    mixtures: int = Field(description="Gaussian mixtures in the MDN head.")
    parameters: int = Field(description="Trainable parameters (every array of the weights artifact).")
    val_nll: float | None = Field(description="Best validation negative log-likelihood from training, if recorded.")
    sha256: str | None = Field(description="sha256 of the weights file as loaded; null for an in-process engine.")
    created: str | None = Field(description="When the artifact was exported (ISO 8601), if recorded.")
    run: str | None = Field(description="The training run it was exported from (runs/NAME), if recorded.")
    precision: str = Field(description="The arithmetic the engine serves with: fp32, or int8 (ROBOJAM_PRECISION).")


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def parameter_count(units: int, layers: int, mixtures: int, dimension: int) -> int:
    """Sum of the artifact's array sizes, from the format's own shape table."""
    return sum(math.prod(shape) for shape in expected_shapes(units, layers, mixtures, dimension).values())


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def describe(metadata: dict, sha256: str | None, precision: str = "fp32") -> ModelInfo:
    """The served engine's metadata (validated by the contract at load) as the API's answer."""
    val_nll, created, run = metadata.get("val_nll"), metadata.get("created"), metadata.get("run")
    return ModelInfo(
        units=metadata["units"],
        layers=metadata["layers"],
        mixtures=metadata["mixtures"],
        parameters=parameter_count(metadata["units"], metadata["layers"], metadata["mixtures"], metadata["dimension"]),
        val_nll=float(val_nll) if _finite_number(val_nll) else None,
        sha256=sha256,
        created=created if isinstance(created, str) else None,
        run=run if isinstance(run, str) else None,
        precision=precision,
    )


@bp.get("/model")
def model():
    engine = current_app.extensions["robojam"].engine
    return jsonify(describe(engine.metadata, current_app.extensions[EXTENSION], engine.precision).model_dump())


def init_app(app: Flask, weights: Path | None) -> None:
    """Register GET /api/model; `weights` is the file the app loaded its engine from (None: engine given)."""
    app.extensions[EXTENSION] = file_sha256(weights) if weights is not None else None
    app.register_blueprint(bp)
