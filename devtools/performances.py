"""Typical performances for requests and engine inputs: seeded, plausible, one definition each.

- `typical_events(n, seed)`: what the engine reads, `(n, 3)` float32 `[x, y, dt]`, dt about 50 ms.
- `typical_request(n, seed)`: the same touches as the app's CSV (the benchmarks' and staging's request).
- `random_performance(seed, seconds)`: a few swipes and taps as the app records them, about `seconds` long.
"""

from __future__ import annotations

import numpy as np

from robojam_format.performance import APP_SEPARATOR, format_csv, format_rows


def typical_events(n: int = 100, seed: int = 0) -> np.ndarray:
    """A plausible cleaned performance: (n, 3) float32 [x, y, dt], dt about 50 ms, the first dt 0."""
    rng = np.random.default_rng(seed)
    dt = np.clip(rng.exponential(0.05, n), 0.0, 5.0)
    dt[0] = 0.0
    return np.column_stack([rng.random(n), rng.random(n), dt]).astype(np.float32)


def typical_request(n: int = 100, seed: int = 0) -> str:
    """`typical_events(n, seed)` written exactly as the app writes a performance (n touches over about n / 20 s)."""
    return format_csv(typical_events(n, seed), separator=APP_SEPARATOR)


def app_csv(rows) -> str:
    """A performance exactly as the app writes it: header, then "%f, %f, %f, %f, %d\\n" per touch."""
    return format_rows(rows, separator=APP_SEPARATOR)


def random_performance(seed: int, seconds: float = 5.0) -> str:
    """An app-format performance of a few swipes and taps (random walk), about `seconds` long."""
    rng = np.random.default_rng(seed)
    rows, t = [], rng.uniform(0.0, 0.05)
    while t < seconds:
        x, y = rng.uniform(0.05, 0.95, size=2)
        for i in range(int(rng.integers(1, 25))):
            rows.append((t, x, y, rng.uniform(10.0, 40.0), 0 if i == 0 else 1))
            x = float(np.clip(x + rng.normal(0, 0.03), 0, 1))
            y = float(np.clip(y + rng.normal(0, 0.03), 0, 1))
            t += rng.uniform(0.015, 0.03)
        t += rng.uniform(0.1, 0.6)
    return app_csv(rows)
