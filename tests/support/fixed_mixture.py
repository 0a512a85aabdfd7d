"""A model for the engine tests whose MDN output is known exactly (plausible inputs: `devtools.performances`)."""

from __future__ import annotations

import numpy as np

from devtools.random_weights import random_arrays, random_metadata, write_artifact


def fixed_mixture_artifact(tmp_path, *, x_means=(0.2, 0.8), dt_means=(0.1, 0.1), sigma_raw=1.0, pi=(0.0, 1.0)):
    """A 1 x 8 model whose head ignores the LSTM: every step's MDN output is exactly the head's bias."""
    arrays = random_arrays(8, 1, 2)
    for part in ("mus", "sigmas", "pi"):
        arrays[f"mdn_{part}_kernel"][:] = 0.0
    arrays["mdn_mus_bias"][:] = np.array([[x, 0.5, dt] for x, dt in zip(x_means, dt_means, strict=True)]).ravel() * 10
    arrays["mdn_sigmas_bias"][:] = sigma_raw
    arrays["mdn_pi_bias"][:] = pi
    return write_artifact(tmp_path / "fixed.npz", random_metadata(8, 1, 2), arrays)
