"""IMPSY's files in the shared data (ROBOJAM_DATA/impsy/, see ../shared/README.md): two trained Keras 2 MDRNNs and
the expected values of IMPSY's model conformance vectors. Missing, a test skips locally and fails in CI (`require`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from robojam_format import artifact as spec
from support import require

# Full Keras 2.2.5 model, input [dt, x], LSTM 2 x 32, hard_sigmoid gates (the EMPI study's "human" model).
DIM2 = "musicMDRNN-dim2-layers2-units32-mixtures5-scale10.h5"
# Weights only, Keras 2.2.4-tf, input [dt, 8 controls], LSTM 2 x 64: IMPSY's default model, which IMPSY today loads
# into a Keras 3 model with sigmoid gates.
DIM9 = "musicMDRNN-dim9-layers2-units64-mixtures5-scale10.h5"
VECTORS = "conformance-model-vectors.json"


def impsy_file(data_dir: Path, name: str) -> Path:
    """The IMPSY file `name` beside the corpus in `data_dir` (the `data_dir` fixture)."""
    path = data_dir / "impsy" / name
    require(path.is_file(), f"IMPSY file not found: {path} (ROBOJAM_DATA={os.environ.get('ROBOJAM_DATA')})")
    return path


def vector_model_arrays(model: dict) -> dict[str, np.ndarray]:
    """The conformance vectors' fixed weights, as their file describes them: one `default_rng(2345)` drawing
    uniform(-2, 2) for each Keras weight in get_weights() order (the artifact's keys are in that order)."""
    rng = np.random.default_rng(2345)
    shapes = spec.expected_shapes(model["units"], model["layers"], model["mixtures"], model["dimension"])
    order = [key for i in range(model["layers"]) for key in spec.lstm_keys(i)]
    order += [key for part in spec.MDN_PARTS for key in spec.mdn_keys(part)]
    assert sorted(order) == sorted(shapes)
    return {key: rng.uniform(-2.0, 2.0, shapes[key]).astype(np.float32) for key in order}


def control_walk(steps: int, dimension: int, seed: int) -> np.ndarray:
    """IMPSY-style inputs in the scaled space: [dt, x_1, ...], dt about 0.1 s, controls a random walk in [0, 1]."""
    rng = np.random.default_rng(seed)
    events = np.empty((steps, dimension), dtype=np.float32)
    events[:, 0] = rng.exponential(0.1, steps)
    events[:, 1:] = np.clip(0.5 + np.cumsum(rng.normal(0.0, 0.03, (steps, dimension - 1)), axis=0), 0.0, 1.0)
    return events * np.float32(spec.SCALE)
