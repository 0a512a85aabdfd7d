"""Score models on the validation split: the MDRNN's NLL and the trivial baseline it must beat.

Both NLLs are mean negative log-likelihoods per event in the scaled space (events * SCALE), the space the
training loss reports, so they compare directly.
"""

from __future__ import annotations

import math

import numpy as np


def fit_diagonal_gaussian(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per dimension of all target events (the maximum-likelihood fit)."""
    flat = np.asarray(targets, dtype=np.float64).reshape(-1, targets.shape[-1])
    return flat.mean(axis=0), flat.std(axis=0)


def diagonal_gaussian_nll(targets: np.ndarray, mean: np.ndarray, std: np.ndarray) -> float:
    """Mean NLL per event of `targets` under N(mean, diag(std^2))."""
    flat = np.asarray(targets, dtype=np.float64).reshape(-1, targets.shape[-1])
    z = (flat - mean) / std
    per_event = 0.5 * np.sum(z**2, axis=1) + np.sum(np.log(std)) + 0.5 * flat.shape[1] * math.log(2 * math.pi)
    return float(per_event.mean())


def model_nll(model, x: np.ndarray, y: np.ndarray, mixtures: int, batch_size: int = 64) -> float:
    """Mean NLL per event of `y` under the MDRNN's predicted mixtures (keras-mdn-layer's loss)."""
    from model.mdrnn import loss_function

    loss = loss_function(mixtures)
    total, count = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        total += float(loss(yb, model(xb, training=False))) * yb.shape[0] * yb.shape[1]
        count += yb.shape[0] * yb.shape[1]
    return total / count
