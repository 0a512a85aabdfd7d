"""Inference benchmark: Keras the way RoboJam served it vs the NumPy engine (`make bench`; not a test).

    python -m benchmarks.inference [--quick] [--out benchmarks/latest.json]

One request = condition on 100 touches (about 5 s of playing) and generate a 5 s continuation with the default
2 x 512 x 5 model (random weights; the dt means are biased to ~50 ms per touch so the continuation has a
realistic ~100 touches instead of crawling at the 1 ms minimum). Every method runs the same request with the same
sampling draws, so they generate the same touches and do the same number of network steps:
  (a) Keras `model.predict` once per step on a stateful batch-1, sequence-1 model (RoboJam's original server),
  (b) Keras `predict_on_batch` once per step on the same model,
  (c) service.engine.Engine.continue_performance.
Each method's wall-clock median and best, and its median process CPU time, are reported: on a shared machine
the wall clock also counts other jobs' time slices, CPU time counts only the request's own work (and gives
`requests_per_second_per_vcpu`). It also starts a real gunicorn server (one worker, the service's own config)
on the same weights, sends one request and reads the worker's peak RSS. Single thread everywhere: the thread
variables are set below before NumPy or TensorFlow load. A development tool outside `service/` (it imports Keras
and `model/`); the serving code and image never see it.
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
):
    os.environ[_var] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import requests  # noqa: E402

from benchmarks.results import METHODS  # noqa: E402
from devtools.gunicorn import VENV_BIN, GunicornProcess  # noqa: E402
from devtools.performances import typical_events  # noqa: E402
from robojam_format.layout import REPO_ROOT  # noqa: E402
from robojam_format.performance import APP_SEPARATOR, format_csv  # noqa: E402
from service.engine import MAX_STEPS, Engine, Sampler  # noqa: E402

EVENTS, SECONDS, DT = 100, 5.0, 0.05  # DT: the dt the model's random weights aim for
SEED = 2024


def build_models(tmp: Path):
    """(stateful batch-1 seq-1 Keras model, engine) sharing one set of random weights."""
    import keras
    import tensorflow as tf

    from model.export import export_artifact
    from model.mdrnn import SCALE, build_model

    tf.config.threading.set_intra_op_parallelism_threads(1)  # besides the env vars, to be sure
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(SEED)  # the same random weights every run

    model = build_model()  # 2 x 512, 5 mixtures: RoboJam's size
    head = model.get_layer("mdn").layer.mdn_mus
    kernel, bias = head.get_weights()
    bias[0::3], bias[1::3], bias[2::3] = 0.5 * SCALE, 0.5 * SCALE, DT * SCALE  # centre x, y; ~50 ms per touch
    head.set_weights([kernel, bias])
    path = export_artifact(model, tmp / "bench.npz", {"training": {"note": "random weights for the benchmark"}})
    stateful = build_model(stateful=True, batch_size=1, seq_len=1)
    stateful.set_weights(model.get_weights())
    return stateful, Engine.load(path), path


def keras_request(model, engine: Engine, events: np.ndarray, call) -> np.ndarray:
    """RoboJam's serving loop on a stateful Keras model, `call(x)` being predict or predict_on_batch per step.

    The sampling is the engine's own, fed the same draws (same seed), so both produce the same touches.
    """
    for layer in model.layers:
        if hasattr(layer, "reset_states") and getattr(layer, "stateful", False):
            layer.reset_states()
    scale = np.float32(engine.scale)
    for event in events:
        out = np.asarray(call((event * scale)[None, None]), dtype=np.float32).reshape(-1)
    rng = np.random.default_rng(SEED)
    choices = rng.random(MAX_STEPS).tolist()
    noise = rng.standard_normal((MAX_STEPS, 3), dtype=np.float32) * np.float32(np.sqrt(0.01))
    sampler = Sampler(out, engine.mixtures, 3, 1.5, engine.sigma_epsilon, engine.scale)
    generated = np.empty((MAX_STEPS, 3), dtype=np.float32)
    total, steps = 0.0, 0
    while True:
        sampler.sample_activated(out, choices[steps], noise[steps], out=generated[steps])
        total += generated[steps].item(2)
        steps += 1
        if total >= SECONDS or steps >= MAX_STEPS:
            return generated[:steps].copy()
        out = np.asarray(call((generated[steps - 1] * scale)[None, None]), dtype=np.float32).reshape(-1)


class Timing:
    """Wall-clock and process CPU milliseconds per run of one method."""

    def __init__(self, fn, reps: int, warm: int):
        for _ in range(warm):
            self.result = fn()
        self.wall, self.cpu = [], []
        for _ in range(reps):
            wall, cpu = time.perf_counter(), time.process_time()
            self.result = fn()
            self.cpu.append((time.process_time() - cpu) * 1e3)
            self.wall.append((time.perf_counter() - wall) * 1e3)
        self.median, self.best, self.cpu_median = (
            statistics.median(self.wall),
            min(self.wall),
            statistics.median(self.cpu),
        )


def gunicorn_worker_rss_mb(weights: Path, events: np.ndarray, tmp: Path) -> tuple[float, str]:
    """Peak RSS (VmHWM) of a real gunicorn worker after warm-up and one request; falls back to a bare engine."""
    if (VENV_BIN / "gunicorn").is_file() and (REPO_ROOT / "service" / "app.py").is_file():
        env = {"ROBOJAM_WEIGHTS": str(weights), "ROBOJAM_WORKERS": "1"}
        with GunicornProcess(tmp / "gunicorn.log", env=env) as server:
            server.wait_ready(timeout=120)
            body = {"perf": format_csv(events, separator=APP_SEPARATOR)}
            reply = requests.post(server.url + "/api/predict", json=body, timeout=60)
            if "response" not in reply.json():
                raise RuntimeError("/api/predict answered without a 'response'.")
            status = Path(f"/proc/{server.workers()[0]}/status").read_text()
            hwm_kb = int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])
            return hwm_kb / 1024, "gunicorn worker (VmHWM after warm-up + one /api/predict)"
    code = (
        "import resource, sys, numpy as np; from service.engine import Engine; "
        "e = Engine.load(sys.argv[1]); ev = np.load(sys.argv[2]); "
        "[e.continue_performance(ev, rng=np.random.default_rng(i)) for i in range(3)]; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    with tempfile.NamedTemporaryFile(suffix=".npy") as f:
        np.save(f, events)
        f.flush()
        out = subprocess.run(
            [sys.executable, "-c", code, str(weights), f.name],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return int(out.split()[-1]) / 1024, "python process that loads the engine and serves 3 requests (maxrss)"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} vCPU, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.inference", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (one slow model.predict request)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "latest.json")
    args = parser.parse_args(argv)
    reps = {"engine": 30, "batch": 3, "predict": 1} if args.quick else {"engine": 200, "batch": 10, "predict": 3}

    events = typical_events(EVENTS, SEED)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        stateful, engine, weights = build_models(Path(tmp))
        runs = {}
        runs["numpy_engine"] = Timing(
            lambda: engine.continue_performance(events, rng=np.random.default_rng(SEED)), reps["engine"], warm=5
        )
        _progress("(c) numpy engine", runs["numpy_engine"])
        runs["keras_predict_on_batch"] = Timing(
            lambda: keras_request(stateful, engine, events, stateful.predict_on_batch), reps["batch"], warm=1
        )
        _progress("(b) keras predict_on_batch", runs["keras_predict_on_batch"])
        runs["keras_predict_stateful"] = Timing(
            lambda: keras_request(stateful, engine, events, lambda x: stateful.predict(x, verbose=0)),
            reps["predict"],
            warm=0,
        )
        _progress("(a) keras predict", runs["keras_predict_stateful"])
        rss_mb, rss_how = gunicorn_worker_rss_mb(weights, events, Path(tmp))
    load_after = os.getloadavg()
    ours = runs["numpy_engine"].result
    same = all(len(r.result) == len(ours) and float(np.abs(r.result - ours).max()) < 1e-4 for r in runs.values())
    ours_wall, ours_cpu = runs["numpy_engine"].median, runs["numpy_engine"].cpu_median
    network_steps = EVENTS + len(ours) - 1
    order = ("keras_predict_stateful", "keras_predict_on_batch", "numpy_engine")
    results = {
        "ms_per_request": {name: round(runs[name].median, 2) for name in order},
        "ms_per_request_best": {name: round(runs[name].best, 2) for name in order},
        "cpu_ms_per_request": {name: round(runs[name].cpu_median, 2) for name in order},
        "ratios": {f"{name}/numpy_engine": round(runs[name].median / ours_wall, 1) for name in order[:2]},
        "cpu_ratios": {f"{name}/numpy_engine": round(runs[name].cpu_median / ours_cpu, 1) for name in order[:2]},
        "worker_peak_rss_mb": round(rss_mb, 1),
        "worker_peak_rss_how": rss_how,
        # One request occupies one vCPU for its CPU time; wall time on a shared machine also counts others' work.
        "requests_per_second_per_vcpu": round(1000.0 / ours_cpu, 2),
        "request": {
            "conditioning_events": EVENTS,
            "seconds": SECONDS,
            "generated_touches": len(ours),
            "network_steps": network_steps,
            "model": "2 x 512 LSTM, 5 mixtures, random weights (seeded)",
            "keras_same_touches_as_engine": same,
        },
        "repetitions": reps,
        "threads": 1,
        "load_average_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    print()
    print(
        f"request: {EVENTS} conditioning touches + {SECONDS:g} s continuation = {len(ours)} generated touches "
        f"({network_steps} network steps); 2x512 LSTM, 5 mixtures; 1 thread; {results['machine']}"
    )
    print("| method | ms / request (median) | best | CPU ms (median) | vs engine (wall / CPU) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in order:
        r = runs[name]
        print(
            f"| {METHODS[name]} | {r.median:,.1f} | {r.best:,.1f} | {r.cpu_median:,.1f} "
            f"| {r.median / ours_wall:,.1f}x / {r.cpu_median / ours_cpu:,.1f}x |"
        )
    print(f"worker peak RSS: {rss_mb:.1f} MB ({rss_how})")
    print(f"1-min load average before/after: {results['load_average_1min_before_after']} on {os.cpu_count()} vCPU")
    print(f"Keras and the engine generated the same touches: {same}; wrote {args.out}")
    return 0


def _progress(label: str, timing: Timing) -> None:
    print(
        f"{label:<28} {timing.median:10.1f} ms median, {timing.cpu_median:10.1f} ms CPU ({len(timing.result)} touches)",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
