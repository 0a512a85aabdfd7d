"""Load and validate the RoboJam weights artifact (model/ARTIFACT.md) with NumPy alone.

Every way a file can be wrong (missing, not a zip, pickled, wrong format or version, missing key, bad shape or
dtype, non-finite weights) becomes one `ArtifactError` with a one-sentence message, so the service can refuse to
start with a clear reason instead of failing on the first request.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robojam_format.layout import SHIPPED_WEIGHTS

FORMAT = "robojam-mdrnn-weights"
SUPPORTED_VERSIONS = (1,)
ENV_VAR = "ROBOJAM_WEIGHTS"
DEFAULT_WEIGHTS = SHIPPED_WEIGHTS

# What the engine implements; an artifact that asks for anything else is refused, not silently mis-run.
EXPECTED_SETTINGS = {
    "lstm_gate_order": "ifco",
    "lstm_activation": "tanh",
    "lstm_recurrent_activation": "sigmoid",
    "mdn_sigma_activation": "elu_plus_one_plus_epsilon",
}


class ArtifactError(ValueError):
    """The weights artifact is missing or is not a valid RoboJam artifact."""


@dataclass(frozen=True)
class Artifact:
    """A validated artifact: metadata plus float32 arrays keyed as in ARTIFACT.md."""

    path: Path
    metadata: dict
    arrays: dict[str, np.ndarray]

    @property
    def units(self) -> int:
        return self.metadata["units"]

    @property
    def layers(self) -> int:
        return self.metadata["layers"]

    @property
    def mixtures(self) -> int:
        return self.metadata["mixtures"]

    @property
    def dimension(self) -> int:
        return self.metadata["dimension"]

    @property
    def scale(self) -> float:
        return float(self.metadata["scale"])

    @property
    def sigma_epsilon(self) -> float:
        return float(self.metadata["mdn_sigma_epsilon"])


def resolve_path(path: str | os.PathLike | None = None) -> Path:
    """`path`, else $ROBOJAM_WEIGHTS, else the shipped default."""
    if path is None:
        path = os.environ.get(ENV_VAR) or DEFAULT_WEIGHTS
    return Path(path)


def expected_shapes(units: int, layers: int, mixtures: int, dimension: int) -> dict[str, tuple[int, ...]]:
    """Every array key of an artifact with these sizes, mapped to its required shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(layers):
        inputs = dimension if i == 0 else units
        shapes[f"lstm_{i}_kernel"] = (inputs, 4 * units)
        shapes[f"lstm_{i}_recurrent_kernel"] = (units, 4 * units)
        shapes[f"lstm_{i}_bias"] = (4 * units,)
    for part, width in (("mus", mixtures * dimension), ("sigmas", mixtures * dimension), ("pi", mixtures)):
        shapes[f"mdn_{part}_kernel"] = (units, width)
        shapes[f"mdn_{part}_bias"] = (width,)
    return shapes


def _positive_int(metadata: dict, key: str, where: Path) -> int:
    value = metadata.get(key)
    if type(value) is not int or value < 1:
        raise ArtifactError(f"{where}: metadata '{key}' must be a positive integer, got {value!r}.")
    return value


def _check_metadata(metadata: object, where: Path) -> dict:
    if not isinstance(metadata, dict):
        raise ArtifactError(f"{where}: metadata must be a JSON object.")
    if metadata.get("format") != FORMAT:
        raise ArtifactError(f"{where}: format is {metadata.get('format')!r}, expected {FORMAT!r}.")
    version = metadata.get("format_version")
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise ArtifactError(
            f"{where}: format_version {version!r} is not supported (this service reads {SUPPORTED_VERSIONS})."
        )
    for key in ("units", "layers", "mixtures", "dimension"):
        _positive_int(metadata, key, where)
    if metadata["dimension"] != 3:
        raise ArtifactError(f"{where}: dimension is {metadata['dimension']}, expected 3 (x, y, dt).")
    for key in ("scale", "mdn_sigma_epsilon"):
        value = metadata.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ArtifactError(f"{where}: metadata '{key}' must be a positive finite number, got {value!r}.")
    for key, expected in EXPECTED_SETTINGS.items():
        if metadata.get(key) != expected:
            raise ArtifactError(f"{where}: metadata '{key}' is {metadata.get(key)!r}, expected {expected!r}.")
    return metadata


def _read_npz(where: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Raw (metadata, arrays) from the archive; container-level errors only."""
    if not where.is_file():
        raise ArtifactError(f"weights artifact not found: {where} (set {ENV_VAR} to its path).")
    try:
        with where.open("rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise ArtifactError(f"{where}: cannot be read ({exc.strerror}).") from None
    if magic.startswith(b"\x93NUMPY"):
        raise ArtifactError(f"{where}: is a single .npy array, not an .npz archive.")
    if not magic.startswith(b"PK"):
        raise ArtifactError(f"{where}: not an .npz archive (not a zip file).")
    try:
        with np.load(where, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"{where}: not a readable .npz archive ({exc}).") from None
    except (ValueError, OSError) as exc:  # pickled arrays, truncated or malformed members
        raise ArtifactError(f"{where}: not a valid .npz archive of plain arrays ({exc}).") from None
    raw = arrays.pop("metadata", None)
    if raw is None:
        raise ArtifactError(f"{where}: missing the 'metadata' entry.")
    if raw.shape != () or raw.dtype.kind != "U":
        raise ArtifactError(f"{where}: 'metadata' must be a scalar unicode string holding JSON.")
    try:
        metadata = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{where}: 'metadata' is not valid JSON ({exc.msg}).") from None
    return metadata, arrays


def load_artifact(path: str | os.PathLike | None = None) -> Artifact:
    """Read and fully validate an artifact; see `resolve_path` for how `None` is resolved."""
    where = resolve_path(path)
    metadata, arrays = _read_npz(where)
    metadata = _check_metadata(metadata, where)
    shapes = expected_shapes(metadata["units"], metadata["layers"], metadata["mixtures"], metadata["dimension"])
    missing = sorted(set(shapes) - set(arrays))
    if missing:
        raise ArtifactError(f"{where}: missing arrays {', '.join(missing)}.")
    unexpected = sorted(set(arrays) - set(shapes))
    if unexpected:
        raise ArtifactError(f"{where}: unexpected arrays {', '.join(unexpected)} for the sizes in its metadata.")
    for key, shape in shapes.items():
        array = arrays[key]
        if array.shape != shape:
            raise ArtifactError(f"{where}: '{key}' has shape {array.shape}, expected {shape}.")
        if array.dtype != np.float32:
            raise ArtifactError(f"{where}: '{key}' has dtype {array.dtype}, expected float32.")
        if not np.isfinite(array).all():
            raise ArtifactError(f"{where}: '{key}' contains NaN or infinite values.")
    return Artifact(path=where, metadata=metadata, arrays=arrays)
