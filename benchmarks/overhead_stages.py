"""The in-process half of `make bench-overhead`: CPU µs per request in each stage of the service outside inference.

Run as a child of `benchmarks/overhead.py`, as a script with the source tree to measure first on PYTHONPATH (this
tree or the base commit's), so one parent can alternate rounds between two trees. Each line "round" on stdin
answers one JSON line on stdout: per stage, the CPU time (`time.process_time`: every thread of the process, so the
batching loop's share of a hand-off counts) of one call, averaged over `--reps` calls. "inference" answers the
CPU µs of one real inference of the same request (the shipped weights), for scale. Stages, on the typical request
(`overhead_stub`: 100 touches in, 95 out) with the app's own objects:

- request: the whole request through the WSGI app (Flask, hooks, view, error handling), inference replaced by
  `overhead_stub.ReplayEngine`;
- context: Flask's request context made and pushed for that request (part of the HTTP stack);
- fields: `predict.read_fields` (body read and JSON decoded) inside that context;
- validation: `predict.PredictRequest.model_validate` of those fields;
- csv: `performance.parse_csv` + `performance.clean` of the request's CSV;
- admission: `request_cost` and a fresh `Admission`'s `check_room`, `admit` and release;
- handoff: `Batcher.arriving` and `Batcher.generate` through the app's batching loop (the replay is instant);
- reply: `performance.format_csv` of the 95 generated touches;
- metrics: the app's request hooks from `service.metrics` (start, record, finish) inside a pushed context, and
  the two `set_queue` and one `observe_batch` calls a request makes.

The parent derives the JSON body and the Flask/werkzeug remainder from these (see `overhead.stage_rows`).
Prometheus runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by the parent), as under gunicorn.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable

import numpy as np
from overhead_stub import ReplayEngine, typical_perf


def environ_for(body: bytes) -> dict:
    """A WSGI environ for POST /api/predict with `body` as JSON, as gunicorn would pass it."""
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/predict",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:5000",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def repeat(call: Callable[[], object]) -> Callable[[int], None]:
    def run(reps: int) -> None:
        for _ in range(reps):
            call()

    return run


def stages(app, perf: str) -> dict[str, Callable[[int], None]]:
    """Each stage as `run(reps)`."""
    from flask import request

    from robojam_format import performance
    from service import metrics, predict
    from service.admission import Admission, request_cost

    body = json.dumps({"perf": perf, "seed": 12345}).encode()
    runtime, max_rows = app.extensions["robojam"], app.config["ROBOJAM_MAX_ROWS"]
    events = performance.clean(performance.parse_csv(perf, max_rows=max_rows))
    fields = json.loads(body)

    def ok(status, headers, exc_info=None):
        assert status.startswith("200"), status

    def whole():
        b"".join(app(environ_for(body), ok))

    def in_context(call):
        def run():
            with app.request_context(environ_for(body)):
                call()

        return run

    def admission():
        queue = Admission(app.config["ROBOJAM_QUEUE_COST"])
        queue.check_room()
        with queue.admit(request_cost(len(events), 5.0)):
            pass

    def handoff():
        with runtime.batcher.arriving():
            pass
        runtime.batcher.generate(events, seconds=5.0, rng=np.random.default_rng(12345))

    def own(hooks):
        return [hook for hook in hooks.get(None, ()) if getattr(hook, "__module__", "") == metrics.__name__]

    before, after = own(app.before_request_funcs), own(app.after_request_funcs)
    teardown = own(app.teardown_request_funcs)
    response = app.response_class("{}", mimetype="application/json")

    def metric_hooks(reps: int) -> None:
        with app.request_context(environ_for(body)):
            for _ in range(reps):
                for hook in before:
                    hook()
                for hook in after:
                    hook(response)
                for hook in teardown:
                    hook(None)
                metrics.set_queue(1, 200)
                metrics.set_queue(0, 0)
                metrics.observe_batch(1)

    return {
        "request": repeat(whole),
        "context": repeat(in_context(lambda: None)),
        "fields": repeat(in_context(lambda: predict.read_fields(request))),
        "validation": repeat(lambda: predict.PredictRequest.model_validate(fields)),
        "csv": repeat(lambda: performance.clean(performance.parse_csv(perf, max_rows=max_rows))),
        "admission": repeat(admission),
        "handoff": repeat(handoff),
        "reply": repeat(lambda: performance.format_csv(runtime.engine.reply)),
        "metrics": metric_hooks,
    }


def one_round(runs: dict[str, Callable[[int], None]], reps: int) -> dict[str, float]:
    """CPU µs per call of each stage, `reps` calls each."""
    found = {}
    for name, run in runs.items():
        start = time.process_time()
        run(reps)
        found[name] = (time.process_time() - start) / reps * 1e6
    return found


def inference_us(perf: str, repeats: int = 15) -> float:
    """Median CPU µs of one real inference of the request (the shipped weights), for scale."""
    from robojam_format import performance
    from robojam_format.layout import SHIPPED_WEIGHTS
    from service.engine import Engine

    engine = Engine.load(SHIPPED_WEIGHTS)
    events = performance.clean(performance.parse_csv(perf))
    times = []
    for seed in range(repeats):
        start = time.process_time()
        engine.continue_performance(events, rng=np.random.default_rng(seed))
        times.append((time.process_time() - start) * 1e6)
    return float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200, help="calls of each stage per round")
    args = parser.parse_args()
    from service.app import create_app

    app = create_app(engine=ReplayEngine())
    runtime = app.extensions["robojam"]
    runtime.readiness.start()
    if not runtime.readiness.wait(60):
        raise SystemExit("the app's warm-up failed")
    perf = typical_perf()
    runs = stages(app, perf)
    one_round(runs, 20)  # warm every path once
    for line in sys.stdin:
        command = line.strip()
        answer = one_round(runs, args.reps) if command == "round" else {"inference": inference_us(perf)}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
