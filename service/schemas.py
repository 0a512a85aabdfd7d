"""The fields of a predict request, validated by pydantic, and how a validation failure reads as one sentence.

Validation is strict (booleans are not numbers, strings are not numbers) and unknown fields are refused, so a
misspelt option such as "temprature" is an error instead of being silently ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

TEMPERATURE_MAX = 10.0
SIGMA_TEMPERATURE_MAX = 1.0
SECONDS_MAX = 10.0
SEED_MAX = 2**64 - 1


class PredictRequest(BaseModel):
    """Body of POST /api/predict."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    perf: str = Field(description="The performance as MicroJam writes it: CSV with a time,x,y,z,moving header.")
    temperature: float = Field(
        1.5, gt=0, le=TEMPERATURE_MAX, description="Softmax temperature of the mixture weights (pi)."
    )
    sigma_temperature: float = Field(
        0.01,
        gt=0,
        le=SIGMA_TEMPERATURE_MAX,
        description="Scale applied to the mixture variances when sampling.",
    )
    seconds: float = Field(5.0, gt=0, le=SECONDS_MAX, description="Length of the generated continuation in seconds.")
    seed: int | None = Field(
        None, ge=0, le=SEED_MAX, description="Random seed; the same seed and input give the same reply."
    )


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
