"""Random but format-valid RoboJam weights artifacts, written with NumPy alone through the contract
(`robojam_format.artifact`: its metadata, keys and container).

Service tests and `make bench-load` use these before trained weights exist and without importing TensorFlow. The
weights are random; the dt mixture means get a bias so a continuation moves at a realistic pace (about `dt_mean`
seconds per touch) instead of crawling at the 1 ms minimum and hitting the 1000-step cap.

    from devtools.random_weights import write_random_artifact
    path = write_random_artifact(tmp_path / "w.npz", units=32, layers=2, mixtures=3)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robojam_format import artifact as spec

DIMENSION = spec.DIMENSION
SCALE = spec.SCALE


def random_metadata(units: int, layers: int, mixtures: int, **overrides) -> dict:
    """Metadata as model.export writes it, for the given sizes."""
    fields = {
        "training": {"note": "random weights from devtools/random_weights.py"},
        "keras_version": None,
        "created": "1970-01-01T00:00:00+00:00",
        **overrides,
    }
    return spec.new_metadata(units, layers, mixtures, **fields)


def random_arrays(
    units: int, layers: int, mixtures: int, *, seed: int = 0, dt_mean: float = 0.05, dimension: int = DIMENSION
) -> dict[str, np.ndarray]:
    """Glorot-uniform-like float32 weights for every array key of the format (the last input column is dt)."""
    rng = np.random.default_rng(seed)

    def uniform(rows: int, cols: int) -> np.ndarray:
        limit = np.sqrt(6.0 / (rows + cols))
        return rng.uniform(-limit, limit, size=(rows, cols)).astype(np.float32)

    arrays: dict[str, np.ndarray] = {}
    for i in range(layers):
        kernel, recurrent, bias_key = spec.lstm_keys(i)
        arrays[kernel] = uniform(dimension if i == 0 else units, 4 * units)
        arrays[recurrent] = uniform(units, 4 * units)
        bias = np.zeros(4 * units, dtype=np.float32)
        bias[units : 2 * units] = 1.0  # Keras' unit_forget_bias
        arrays[bias_key] = bias
    width = mixtures * dimension
    arrays["mdn_mus_kernel"] = uniform(units, width)
    mus_bias = np.full(width, 0.5 * SCALE, dtype=np.float32)  # x, y near the centre
    mus_bias[dimension - 1 :: dimension] = dt_mean * SCALE
    arrays["mdn_mus_bias"] = mus_bias
    arrays["mdn_sigmas_kernel"] = uniform(units, width)
    arrays["mdn_sigmas_bias"] = np.zeros(width, dtype=np.float32)
    arrays["mdn_pi_kernel"] = uniform(units, mixtures)
    arrays["mdn_pi_bias"] = np.zeros(mixtures, dtype=np.float32)
    assert {key: a.shape for key, a in arrays.items()} == spec.expected_shapes(units, layers, mixtures, dimension)
    return arrays


def write_artifact(path, metadata: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write `metadata` and `arrays` in the artifact container (also used to build deliberately broken files)."""
    return spec.write(path, metadata, arrays)


def write_random_artifact(
    path,
    *,
    units: int = 512,
    layers: int = 2,
    mixtures: int = 5,
    seed: int = 0,
    dt_mean: float = 0.05,
    dimension: int = DIMENSION,
    **metadata_overrides,
) -> Path:
    """A random, valid artifact of any size at `path` (default size: RoboJam's 2 x 512, 5 mixtures; metadata
    overrides such as lstm_recurrent_activation="hard_sigmoid")."""
    metadata = random_metadata(units, layers, mixtures, dimension=dimension, **metadata_overrides)
    arrays = random_arrays(units, layers, mixtures, seed=seed, dt_mean=dt_mean, dimension=dimension)
    return write_artifact(path, metadata, arrays)
