"""The service with its inference replaced by a fixed reply: what `make bench-overhead` measures is everything else.

`create_app()` is the real app (`service.app.create_app`: its settings, hooks, admission, batching loop and error
handling) around `ReplayEngine`, which answers every request at once with the same `REPLY_ROWS` touches. gunicorn
loads it as `overhead_stub:create_app()` with this directory on its `--pythonpath`, from whichever source tree it
runs in (`benchmarks/overhead.py` serves the base commit's tree beside this one), so it imports only names both
trees have.
"""

from __future__ import annotations

import numpy as np

from devtools.performances import typical_events, typical_request

REQUEST_ROWS, REPLY_ROWS = 100, 95  # the typical request, and what the shipped model answers it with (~5 s)
REQUEST_SEED = 7  # bench-load's request


def typical_perf() -> str:
    """The request's performance CSV, as `make bench-load` sends it."""
    return typical_request(REQUEST_ROWS, seed=REQUEST_SEED)


class ReplayEngine:
    """An engine that generates nothing: every call returns the same reply at once (a copy, as a real reply is
    fresh). Not a `service.engine.Engine`, so the batcher runs it alone, as a test double."""

    def __init__(self, rows: int = REPLY_ROWS):
        self.reply = typical_events(rows, seed=1)
        self.metadata = {"units": 0, "layers": 0, "mixtures": 0, "dimension": 3}
        self.precision = "fp32"  # what the app reports (/api/model, /metrics)

    def continue_performance(self, events: np.ndarray, **_options) -> np.ndarray:
        return self.reply.copy()


def create_app():
    """gunicorn's app factory: the service around a ReplayEngine."""
    from service.app import create_app as service_app

    return service_app(engine=ReplayEngine())
