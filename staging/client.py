"""A small HTTP client for the checks: wait for readiness, a MicroJam-format /api/predict, polling."""

from __future__ import annotations

import time

import numpy as np
import requests

from robojam_format import performance
from staging.engine import StagingError


def microjam_performance(seed: int = 1, touches: int = 100) -> str:
    """A MicroJam app CSV (`time,x,y,z,moving`) of `touches` events, seeded."""
    rng = np.random.default_rng(seed)
    events = np.column_stack([rng.uniform(0.05, 0.95, (touches, 2)), rng.uniform(0.02, 0.08, touches)])
    return performance.format_csv(events)


def wait_for(url: str, status: int = 200, timeout: float = 120, **kwargs) -> float:
    """Poll `url` until it answers `status`; the seconds that took. Raises StagingError on timeout."""
    start = time.monotonic()
    last = "no answer"
    while time.monotonic() - start < timeout:
        try:
            reply = requests.get(url, timeout=2, **kwargs)
            if reply.status_code == status:
                return time.monotonic() - start
            last = f"{reply.status_code} {reply.text[:200]}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise StagingError(f"{url} did not answer {status} within {timeout:.0f} s (last: {last}).")


def predict(base_url: str, *, touches: int = 100, seconds: float = 5.0, seed: int = 1, timeout: float = 60, **kw):
    """POST a MicroJam performance; returns the reply's events. Raises StagingError unless it is a valid reply."""
    body = {"perf": microjam_performance(seed, touches), "seed": seed, "seconds": seconds}
    reply = requests.post(f"{base_url}/api/predict", json=body, timeout=timeout, **kw)
    if reply.status_code != 200:
        raise StagingError(f"/api/predict answered {reply.status_code}: {reply.text[:300]}")
    text = reply.json().get("response", "")
    if not text.startswith(",".join(performance.HEADER) + "\n"):
        raise StagingError(f"/api/predict's reply is not a MicroJam CSV: {text[:120]!r}")
    try:
        return performance.parse_csv(text, name="the /api/predict reply")
    except performance.PerformanceError as exc:
        raise StagingError(str(exc)) from None
