"""Random but format-valid RoboJam weights artifacts (model/ARTIFACT.md), written with NumPy alone.

Service tests use these before trained weights exist and without importing TensorFlow. The weights are random;
the dt mixture means get a bias so a continuation moves at a realistic pace (about `dt_mean` seconds per touch)
instead of crawling at the 1 ms minimum and hitting the 1000-step cap.

    from artifacts import write_random_artifact   # tests/ is on sys.path under pytest (no tests/__init__.py)
    path = write_random_artifact(tmp_path / "w.npz", units=32, layers=2, mixtures=3)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FORMAT = "robojam-mdrnn-weights"
DIMENSION = 3
SCALE = 10.0


def random_metadata(units: int, layers: int, mixtures: int, **overrides) -> dict:
    """Metadata as model.export writes it, for the given sizes."""
    metadata = {
        "format": FORMAT,
        "format_version": 1,
        "dimension": DIMENSION,
        "units": units,
        "layers": layers,
        "mixtures": mixtures,
        "scale": SCALE,
        "lstm_gate_order": "ifco",
        "lstm_activation": "tanh",
        "lstm_recurrent_activation": "sigmoid",
        "mdn_sigma_activation": "elu_plus_one_plus_epsilon",
        "mdn_sigma_epsilon": 1e-07,
        "data_sha256": None,
        "val_nll": None,
        "train_nll": None,
        "training": {"note": "random weights from tests/artifacts.py"},
        "keras_version": None,
        "created": "1970-01-01T00:00:00+00:00",
    }
    metadata.update(overrides)
    return metadata


def random_arrays(
    units: int, layers: int, mixtures: int, *, seed: int = 0, dt_mean: float = 0.05
) -> dict[str, np.ndarray]:
    """Glorot-uniform-like float32 weights for every array key of the format."""
    rng = np.random.default_rng(seed)

    def uniform(rows: int, cols: int) -> np.ndarray:
        limit = np.sqrt(6.0 / (rows + cols))
        return rng.uniform(-limit, limit, size=(rows, cols)).astype(np.float32)

    arrays: dict[str, np.ndarray] = {}
    for i in range(layers):
        inputs = DIMENSION if i == 0 else units
        arrays[f"lstm_{i}_kernel"] = uniform(inputs, 4 * units)
        arrays[f"lstm_{i}_recurrent_kernel"] = uniform(units, 4 * units)
        bias = np.zeros(4 * units, dtype=np.float32)
        bias[units : 2 * units] = 1.0  # Keras' unit_forget_bias
        arrays[f"lstm_{i}_bias"] = bias
    width = mixtures * DIMENSION
    arrays["mdn_mus_kernel"] = uniform(units, width)
    mus_bias = np.zeros(width, dtype=np.float32)
    mus_bias[0::DIMENSION] = mus_bias[1::DIMENSION] = 0.5 * SCALE  # x, y near the centre
    mus_bias[2::DIMENSION] = dt_mean * SCALE
    arrays["mdn_mus_bias"] = mus_bias
    arrays["mdn_sigmas_kernel"] = uniform(units, width)
    arrays["mdn_sigmas_bias"] = np.zeros(width, dtype=np.float32)
    arrays["mdn_pi_kernel"] = uniform(units, mixtures)
    arrays["mdn_pi_bias"] = np.zeros(mixtures, dtype=np.float32)
    return arrays


def write_artifact(path, metadata: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write `metadata` and `arrays` in the artifact container (also used to build deliberately broken files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:  # a file object keeps np.savez from appending ".npz"
        np.savez(f, metadata=np.array(json.dumps(metadata)), **arrays)
    return path


def write_random_artifact(
    path,
    *,
    units: int = 512,
    layers: int = 2,
    mixtures: int = 5,
    seed: int = 0,
    dt_mean: float = 0.05,
    **metadata_overrides,
) -> Path:
    """A random, valid artifact of any size at `path` (default size: RoboJam's 2 x 512, 5 mixtures)."""
    metadata = random_metadata(units, layers, mixtures, **metadata_overrides)
    return write_artifact(path, metadata, random_arrays(units, layers, mixtures, seed=seed, dt_mean=dt_mean))
