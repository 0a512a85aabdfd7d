"""Reduced precision (ROBOJAM_PRECISION=int8) against float32: speed, drift and musical effect, in one run.

    python -m benchmarks.precision [--rounds 7] [--quality-limit 40 --quality-repeats 10]
        [--out benchmarks/precision.json]

- speed: for the 2 x 512 shape (random weights, devtools/random_weights.py) both engines in one process, alternating
  rounds (run it pinned: `taskset -c 1`): one batched step (`step_rows`, every row drawing) at B = 1 and 16, and a
  whole request (100 touches in, ~5 s out, `continue_performance`) over the same seeds; medians and the spread
  (min-max of the per-round ratios).
- drift: the MDN outputs of both engines over typical performances (devtools/performances.py) from zero state: the
  largest absolute difference of the means, the sigmas (activated) and the mixture weights (softmax of the logits
  at temperature 1.5), on the shipped 2 x 256 model and on the random 2 x 512.
- quality: `benchmarks.quality` in both precisions (same seeds): per statistic the model's distance to the human
  reference, int8's mean against fp32's 2.5-97.5 % interval over repeats (its run-to-run noise). Needs the corpus
  ($ROBOJAM_DATA); `--quality-limit 0` skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from devtools.performances import typical_events
from devtools.random_weights import write_random_artifact
from robojam_format.layout import REPO_ROOT, SHIPPED_WEIGHTS
from service import int8_kernels
from service.engine import MAX_STEPS, BatchState, Engine

PRECISIONS = ("fp32", "int8")
TEMPERATURE = 1.5
BATCHES = (1, 16)
STEPS_PER_ROUND = 60
REQUEST_SEEDS = range(4)


def batched_step_seconds(engine: Engine, rows: int, steps: int) -> float:
    """Seconds per `step_rows` iteration with `rows` requests all drawing (one conditioning event each, a length
    no row reaches within `steps`)."""
    state = BatchState(engine, rows)
    events = typical_events(1)
    for seed in range(rows):
        state.add(engine.prepare(events, 1e9, TEMPERATURE, 0.01, np.random.default_rng(seed)))
    engine.step_rows(state)  # the conditioning step
    assert steps < MAX_STEPS - 1
    start = time.perf_counter()
    for _ in range(steps):
        if engine.step_rows(state):
            raise AssertionError("a row finished during the measurement")
    return (time.perf_counter() - start) / steps


def request_seconds(engine: Engine) -> tuple[float, int]:
    """Seconds for the REQUEST_SEEDS requests (100 touches in, 5 s out) one after another, and their touches."""
    start, touches = time.perf_counter(), 0
    for seed in REQUEST_SEEDS:
        touches += len(engine.continue_performance(typical_events(100, seed), rng=np.random.default_rng(seed)))
    return time.perf_counter() - start, touches


def alternate(engines: dict[str, Engine], measure, rounds: int) -> dict[str, list[float]]:
    """`measure(engine)` for each engine in turn, `rounds` times (alternating, so drift in the machine hits both)."""
    times = {name: [] for name in engines}
    for _ in range(rounds):
        for name, engine in engines.items():
            times[name].append(measure(engine))
    return times


def summary(times: dict[str, list[float]], unit: float) -> dict:
    """Medians (in `unit`), the speed-up of int8 (median of per-round ratios) and its min-max over rounds."""
    ratios = np.array(times["fp32"]) / np.array(times["int8"])
    return {
        **{name: round(float(np.median(values)) / unit, 2) for name, values in times.items()},
        "speedup": round(float(np.median(ratios)), 2),
        "speedup_range": [round(float(ratios.min()), 2), round(float(ratios.max()), 2)],
    }


def speed(weights: Path, rounds: int) -> dict:
    engines = {name: Engine.load(weights, name) for name in PRECISIONS}
    for engine in engines.values():
        batched_step_seconds(engine, 2, 3)  # warm
    result = {}
    for rows in BATCHES:
        times = alternate(engines, lambda e, rows=rows: batched_step_seconds(e, rows, STEPS_PER_ROUND), rounds)
        result[f"step_b{rows}_us"] = summary(times, 1e-6)
    touches = {name: request_seconds(engine)[1] for name, engine in engines.items()}
    times = alternate(engines, lambda e: request_seconds(e)[0], rounds)
    result["request_ms"] = summary({k: [v / len(REQUEST_SEEDS) for v in t] for k, t in times.items()}, 1e-3)
    result["request_touches"] = touches
    return result


def softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    scaled = logits.astype(np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    weights = np.exp(scaled)
    return weights / weights.sum(axis=-1, keepdims=True)


def drift(weights: Path, performances: int = 3, length: int = 200) -> dict:
    """Largest absolute int8 - fp32 differences over `performances` typical performances of `length` touches."""
    engines = {name: Engine.load(weights, name) for name in PRECISIONS}
    md = engines["fp32"].mixtures * engines["fp32"].dimension
    worst = {"mus": 0.0, "sigmas": 0.0, "mixture_weights": 0.0}
    for seed in range(performances):
        events = typical_events(length, seed)
        out = {name: engine.mdn_outputs((events * engine.scale).astype(np.float32)) for name, engine in engines.items()}
        parts = {
            name: {
                "mus": o[:, :md],
                "sigmas": o[:, md : 2 * md],
                "mixture_weights": softmax(o[:, 2 * md :], TEMPERATURE),
            }
            for name, o in out.items()
        }
        for key in worst:
            worst[key] = max(worst[key], float(np.abs(parts["int8"][key] - parts["fp32"][key]).max()))
    return {"steps": performances * length, **{key: float(f"{value:.3g}") for key, value in worst.items()}}


def quality(weights: Path, data: Path, limit: int, repeats: int) -> dict:
    """The quality metric's model distances and relatedness in both precisions; int8 within fp32's noise?"""
    from benchmarks import quality as metric

    reports = {
        name: metric.evaluate(
            weights,
            data,
            temperature=TEMPERATURE,
            sigma_temperature=0.01,
            repeats=repeats,
            limit=limit,
            seed=0,
            precision=name,
        )  # fmt: skip
        for name in PRECISIONS
    }
    rows, nearer, farther = {}, [], []
    for feature in [*metric.FEATURES, "relatedness"]:
        pick = (lambda r: r["systems"]["model"]["relatedness"]) if feature == "relatedness" else (
            lambda r, f=feature: r["systems"]["model"]["distance"][f])  # fmt: skip
        fp32, int8 = pick(reports["fp32"]), pick(reports["int8"])
        rows[feature] = {"fp32": fp32, "int8": int8}
        if fp32["mean"] is not None and int8["mean"] is not None and not fp32["low"] <= int8["mean"] <= fp32["high"]:
            better = int8["mean"] > fp32["high"] if feature == "relatedness" else int8["mean"] < fp32["low"]
            (nearer if better else farther).append(feature)
    return {
        "calls": reports["fp32"]["calls"],
        "repeats": repeats,
        "model": rows,
        # statistics where int8's mean leaves fp32's interval, nearer the humans (or more related) or farther
        "int8_outside_fp32_interval": {"nearer": nearer, "farther": farther},
        "within_fp32_noise": not nearer and not farther,
    }


def machine() -> dict:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": model, "avx512_vnni": int8_kernels.VNNI, "cores": len(os.sched_getaffinity(0))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("ROBOJAM_DATA", REPO_ROOT.parent / "shared" / "data"))
    )
    parser.add_argument("--quality-limit", type=int, default=40, help="held-out calls for the quality metric (0: skip)")
    parser.add_argument("--quality-repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="JSON record (default: print it)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        big = write_random_artifact(Path(tmp) / "2x512.npz", units=512, layers=2, mixtures=5)
        record = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": machine(),
            "speed_2x512": speed(big, args.rounds),
            "drift": {"2x256 shipped": drift(SHIPPED_WEIGHTS), "2x512 random": drift(big)},
        }
    if args.quality_limit:
        record["quality_2x256_shipped"] = quality(SHIPPED_WEIGHTS, args.data, args.quality_limit, args.quality_repeats)
    text = json.dumps(record, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
