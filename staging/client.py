"""A small HTTP client for the checks: wait for readiness, a MicroJam-format /api/predict, polling."""

from __future__ import annotations

import threading
import time

import requests

from devtools.performances import typical_request
from robojam_format import performance
from staging.errors import StagingError

POLL_SECONDS = 0.05  # the downtime client's period


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
    body = {"perf": typical_request(touches, seed), "seed": seed, "seconds": seconds}
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


class Poller:
    """GET `url` every POLL_SECONDS in a thread; what failed and the longest failing stretch."""

    def __init__(self, url: str):
        self.url, self.results, self._stop = url, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                ok = requests.get(self.url, timeout=1).status_code == 200
            except requests.RequestException:
                ok = False
            self.results.append((started, ok))
            self._stop.wait(max(POLL_SECONDS - (time.monotonic() - started), 0))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def downtime(self) -> dict:
        """Failed polls, and the longest stretch from a first failure to the next success (seconds)."""
        failed = [t for t, ok in self.results if not ok]
        longest, start = 0.0, None
        for t, ok in self.results:
            if not ok and start is None:
                start = t
            elif ok and start is not None:
                longest, start = max(longest, t - start), None
        if start is not None:
            longest = max(longest, self.results[-1][0] - start + POLL_SECONDS)
        return {"polls": len(self.results), "failed_polls": len(failed), "longest_outage_s": round(longest, 3)}
