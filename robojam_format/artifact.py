"""The RoboJam weights artifact (model/ARTIFACT.md): the one definition of its container, keys, shapes and checks.

`model.export` writes it, the service and the tests read it, all through this module and NumPy alone. Every way a
file can be wrong (missing, not a zip, pickled, wrong format or version, missing key, bad shape or dtype,
non-finite weights) becomes one `ArtifactError` with a one-sentence message, so a reader can refuse it with a
clear reason instead of failing later.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robojam_format.performance import DIMENSION

FORMAT = "robojam-mdrnn-weights"
VERSION = 1
SUPPORTED_VERSIONS = (1,)
SCALE = 10.0  # RoboJam's: network inputs are events * scale, samples are divided by it
SIGMA_EPSILON = 1e-7
SIZE_KEYS = ("units", "layers", "mixtures", "dimension")
MDN_PARTS = ("mdn_mus", "mdn_sigmas", "mdn_pi")

# What the service's engine implements; an artifact that asks for anything else is refused, not silently mis-run.
SETTINGS = {
    "lstm_gate_order": "ifco",
    "lstm_activation": "tanh",
    "lstm_recurrent_activation": "sigmoid",
    "mdn_sigma_activation": "elu_plus_one_plus_epsilon",
}
# The LSTM gates' activation is the one setting with a choice: Keras 3's default, or Keras 2's (IMPSY's, EMPI's and
# RoboJam's .h5 files), whose hard_sigmoid is clip(0.2 * x + 0.5, 0, 1) (Keras 3's own hard_sigmoid is x / 6 + 0.5,
# clipped: another function). A file without the key predates the choice and means "sigmoid".
RECURRENT_ACTIVATION = "lstm_recurrent_activation"
RECURRENT_ACTIVATIONS = ("sigmoid", "hard_sigmoid")
# The input columns, in order: the one thing the arrays cannot show. MicroJam's (RoboJam's) events are x, y, dt;
# IMPSY's and EMPI's are dt, x_1, ... model.export records MicroJam's for the 3-D models it trains; a file without
# the key (an earlier export) means MicroJam's order if it is 3-D and records no order otherwise.
COLUMNS = "columns"
MICROJAM_COLUMNS = ("x", "y", "dt")


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

    @property
    def recurrent_activation(self) -> str:
        """The LSTM gates' activation, one of RECURRENT_ACTIVATIONS."""
        return recurrent_activation(self.metadata)

    @property
    def columns(self) -> tuple[str, ...] | None:
        """The input columns' names in order (None where the file records none)."""
        return input_columns(self.metadata)


def recurrent_activation(metadata: dict) -> str:
    """The metadata's LSTM gate activation ("sigmoid" when the key is absent, as in files that predate it)."""
    return metadata.get(RECURRENT_ACTIVATION, SETTINGS[RECURRENT_ACTIVATION])


def input_columns(metadata: dict) -> tuple[str, ...] | None:
    """The metadata's input column names in order; without the key, MicroJam's for a 3-D file, else None."""
    names = metadata.get(COLUMNS)
    if names is None:
        return MICROJAM_COLUMNS if metadata.get("dimension") == DIMENSION else None
    return tuple(names)


def lstm_keys(layer: int) -> tuple[str, str, str]:
    """The kernel, recurrent kernel and bias keys of LSTM `layer` (0-based)."""
    return f"lstm_{layer}_kernel", f"lstm_{layer}_recurrent_kernel", f"lstm_{layer}_bias"


def mdn_keys(part: str) -> tuple[str, str]:
    """The kernel and bias keys of an MDN head part (one of MDN_PARTS)."""
    return f"{part}_kernel", f"{part}_bias"


def new_metadata(units: int, layers: int, mixtures: int, **fields) -> dict:
    """The metadata a writer records for a model of these sizes; `fields` add or override (provenance, settings)."""
    metadata = {
        "format": FORMAT,
        "format_version": VERSION,
        "dimension": DIMENSION,
        "units": units,
        "layers": layers,
        "mixtures": mixtures,
        "scale": SCALE,
        **SETTINGS,
        "mdn_sigma_epsilon": SIGMA_EPSILON,
        "data_sha256": None,
        "val_nll": None,
        "train_nll": None,
    }
    metadata.update(fields)
    return metadata


def expected_shapes(units: int, layers: int, mixtures: int, dimension: int = DIMENSION) -> dict[str, tuple[int, ...]]:
    """Every array key of an artifact with these sizes, mapped to its required shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(layers):
        kernel, recurrent, bias = lstm_keys(i)
        shapes[kernel] = (dimension if i == 0 else units, 4 * units)
        shapes[recurrent] = (units, 4 * units)
        shapes[bias] = (4 * units,)
    widths = {"mdn_mus": mixtures * dimension, "mdn_sigmas": mixtures * dimension, "mdn_pi": mixtures}
    for part in MDN_PARTS:
        kernel, bias = mdn_keys(part)
        shapes[kernel] = (units, widths[part])
        shapes[bias] = (widths[part],)
    return shapes


def check_metadata(metadata: object, where: os.PathLike | str, dimension: int | None = None) -> dict:
    """`metadata` if it names this format, a supported version, positive sizes and settings the engine implements.

    The format holds any input dimension; a reader that needs one (the service: MicroJam's 3) passes `dimension`,
    and for 3 the columns must then be MicroJam's x, y, dt too."""
    if not isinstance(metadata, dict):
        raise ArtifactError(f"{where}: metadata must be a JSON object.")
    if metadata.get("format") != FORMAT:
        raise ArtifactError(f"{where}: format is {metadata.get('format')!r}, expected {FORMAT!r}.")
    version = metadata.get("format_version")
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise ArtifactError(
            f"{where}: format_version {version!r} is not supported (readers know {SUPPORTED_VERSIONS})."
        )
    for key in SIZE_KEYS:
        value = metadata.get(key)
        if type(value) is not int or value < 1:
            raise ArtifactError(f"{where}: metadata '{key}' must be a positive integer, got {value!r}.")
    if dimension is not None and metadata["dimension"] != dimension:
        meaning = " (x, y, dt)" if dimension == DIMENSION else ""
        raise ArtifactError(f"{where}: dimension is {metadata['dimension']}, expected {dimension}{meaning}.")
    names = metadata.get(COLUMNS)
    if names is not None and (
        not isinstance(names, list)
        or len(names) != metadata["dimension"]
        or not all(isinstance(name, str) and name for name in names)
        or len(set(names)) != len(names)
    ):
        raise ArtifactError(
            f"{where}: metadata '{COLUMNS}' must name the {metadata['dimension']} input columns once each, "
            f"got {names!r}."
        )
    if dimension == DIMENSION and input_columns(metadata) != MICROJAM_COLUMNS:
        raise ArtifactError(
            f"{where}: its input columns are {', '.join(names)}, expected {', '.join(MICROJAM_COLUMNS)} (MicroJam's)."
        )
    for key in ("scale", "mdn_sigma_epsilon"):
        value = metadata.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ArtifactError(f"{where}: metadata '{key}' must be a positive finite number, got {value!r}.")
    for key, expected in SETTINGS.items():
        if key != RECURRENT_ACTIVATION and metadata.get(key) != expected:
            raise ArtifactError(f"{where}: metadata '{key}' is {metadata.get(key)!r}, expected {expected!r}.")
    if recurrent_activation(metadata) not in RECURRENT_ACTIVATIONS:
        raise ArtifactError(
            f"{where}: metadata '{RECURRENT_ACTIVATION}' is {metadata[RECURRENT_ACTIVATION]!r}, "
            f"expected one of {RECURRENT_ACTIVATIONS}."
        )
    return metadata


def check_arrays(arrays: dict[str, np.ndarray], metadata: dict, where: os.PathLike | str) -> None:
    """Every array the (checked) metadata's sizes call for, no other, each of its shape, float32 and finite."""
    shapes = expected_shapes(*(metadata[key] for key in SIZE_KEYS))
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


def write(path: os.PathLike | str, metadata: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write `metadata` (as a JSON string) and `arrays` in the container, atomically. Unchecked on purpose: tests
    build deliberately broken files with it, and readers check."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("wb") as f:  # a file object keeps np.savez from appending ".npz"
        np.savez(f, metadata=np.array(json.dumps(metadata, sort_keys=True)), **arrays)
    tmp.replace(out)
    return out


def read(path: os.PathLike | str) -> tuple[object, dict[str, np.ndarray]]:
    """Raw (metadata, arrays) from the container; container-level errors only (see `load` for the full check)."""
    where = Path(path)
    if not where.is_file():
        raise ArtifactError(f"weights artifact not found: {where}.")
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


def load(path: os.PathLike | str, dimension: int | None = None) -> Artifact:
    """Read and fully validate the artifact at `path` (of input dimension `dimension`, if given)."""
    where = Path(path)
    metadata, arrays = read(where)
    metadata = check_metadata(metadata, where, dimension)
    check_arrays(arrays, metadata, where)
    return Artifact(path=where, metadata=metadata, arrays=arrays)
