"""`make bench-peers`: the project's serving path against ONNX Runtime and LiteRT on the same artifact, one core.

    python -m benchmarks.peers [--quick] [--rounds N] [--clock wall|cpu] [--avx2] [--core N] [--out PATH]

The same artifact for every method: the shipped 2x256 weights and a seeded random 2x512 (devtools.random_weights).
Methods (METHODS): the project's engine in each of PROJECT_PRECISIONS (its whole request is
`Engine.continue_performance`, the service's path; its batched step is `Engine.step_rows` over a `BatchState` of B
generating rows, as service/batcher.py drives it), and the peers built from the artifact's arrays (PEERS): ONNX
Runtime (the LSTM operator over the conditioning sequence, a one-step model after) and LiteRT (model/litert.py's
one-step model, XNNPACK), each in fp32 and in dynamic int8.

- A whole request conditions on the typical 100-touch call (devtools.performances) and generates 5 s; every method
  takes its draws from `Engine.prepare` and samples with the engine's `Sampler` (benchmarks/peer.py), so fp32
  methods give the same touches (checked).
- One batched step for B = 1, 4, 16, 32 rows: the project's includes feeding and drawing its rows (the batched
  loop's whole iteration); a peer's is its network alone (inputs set, run, outputs read), which favours the peers.
- Equality: every fp32 method's MDN outputs within FP32_TOLERANCE of `Engine.mdn_outputs` (conditioning,
  step by step, and three rows batched; relative where an output exceeds 1) and the same touches; int8's drift
  (MDN outputs, mus, sigmas, mixture weights at temperature 1.5) is reported.
- One process pinned to one core, one thread everywhere (the thread variables are set below before NumPy loads);
  methods alternate within each round (the order rotates), so a drift in the machine's speed hits all alike; the
  median per call and the spread (min-max over rounds) of wall time (`--clock cpu`: of the calling thread's CPU
  time, which every method's work runs on and which a shared machine's other jobs do not inflate), and both
  medians.
- The machine: CPU model and vector extensions, the single-core sgemm peak (each step's FLOPs as a fraction of it)
  and the weight-streaming floor for B = 1 (the weights' bytes over the read bandwidth of a buffer of that size).
- `--avx2` re-runs itself with the project built for an AVX2 target (Numba's haswell target, so 4x3 register
  tiles; OpenBLAS's Haswell kernels; NumPy without its AVX-512 loops); ONNX Runtime and LiteRT pick their kernels
  by CPUID and cannot be restricted, so the peers keep the host's best (the record says which).

Writes benchmarks/peers.json (`--avx2`: peers-avx2.json); `python -m benchmarks.results` puts their tables in
benchmarks/README.md.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # run as a program: one thread everywhere, before NumPy loads (not when a test imports it)
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                 "TF_NUM_INTEROP_THREADS", "NUMBA_NUM_THREADS"):  # fmt: skip
        os.environ[_var] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks import machine_limits  # noqa: E402
from benchmarks.peer import Peer, continuation  # noqa: E402
from benchmarks.results import PEERS_AVX2_RESULTS, PEERS_RESULTS, peers_tables  # noqa: E402
from devtools.performances import typical_events  # noqa: E402
from devtools.random_weights import write_random_artifact  # noqa: E402
from robojam_format import artifact as spec  # noqa: E402
from robojam_format.layout import SHIPPED_WEIGHTS  # noqa: E402
from service.engine import MAX_STEPS, BatchState, Engine  # noqa: E402
from service.settings import PRECISIONS as PROJECT_PRECISIONS  # noqa: E402 - project_<precision>: ROBOJAM_PRECISION's choices

PEERS = ("onnxruntime_fp32", "litert_fp32", "onnxruntime_int8", "litert_int8")
BATCHES = (1, 4, 16, 32)
EVENTS, SECONDS, TEMPERATURE, SIGMA_TEMPERATURE, SEED = 100, 5.0, 1.5, 0.01, 2024
# The engine <-> Keras tolerance on MDN outputs (tests/test_engine_keras.py), relative above 1 in magnitude: the mus
# live in the scaled space (x 10), where a float32 step is ~5e-7 and a 1024-long sum in another order moves ~1e-5.
FP32_TOLERANCE = 1e-5
TOUCH_TOLERANCE = 1e-4  # the same touches: MDN differences of 1e-5 move a touch by about 1e-6
CHECK_ROWS, CHECK_STEPS = 3, 40
AVX2_FLAG = "ROBOJAM_PEERS_AVX2"
AVX2_ENVIRONMENT = {
    AVX2_FLAG: "1",
    "NUMBA_CPU_NAME": "haswell",
    "NUMBA_CPU_FEATURES": "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+cx8,+f16c,+fma,+fxsr,+lzcnt,+mmx,+movbe,+popcnt,"
    "+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave",
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}


def methods() -> tuple[str, ...]:
    """Every method's key, the project's first."""
    return (*(f"project_{precision}" for precision in PROJECT_PRECISIONS), *PEERS)


def precision_of(method: str) -> str:
    return method.rsplit("_", 1)[1]


def project_engine(artifact: spec.Artifact, precision: str) -> Engine:
    """The engine in `precision`, the one place that says how the engine takes a precision."""
    return Engine(artifact, precision=precision)


def build_peer(method: str, artifact: spec.Artifact) -> Peer:
    """The peer `method` (one of PEERS) built from the artifact's arrays."""
    runtime, precision = method.rsplit("_", 1)
    int8 = precision == "int8"
    if runtime == "onnxruntime":
        from benchmarks.onnx_peer import OnnxPeer

        return OnnxPeer(artifact, int8=int8)
    from benchmarks.litert_peer import LiteRTPeer

    return LiteRTPeer.from_artifact(artifact, int8=int8)


@dataclass
class Settings:
    rounds: int = 21
    round_seconds: float = 0.04  # each method's share of a round, in calls of about this much time
    batches: tuple[int, ...] = BATCHES
    peak_size: int = machine_limits.PEAK_SIZE
    clock: str = "wall"  # what the medians and spreads are of: "wall", or "cpu" (the calling thread's CPU time)


# ---- timing --------------------------------------------------------------------------------------------------


def summary(wall: list[float], cpu: list[float], calls: int, scale: float, clock: str) -> dict:
    """Per-call median, min and max over the rounds of `clock`'s time ("wall" or "cpu"), and both medians, times
    `scale`."""
    chosen = wall if clock == "wall" else cpu
    return {
        "median": round(statistics.median(chosen) * scale, 2),
        "min": round(min(chosen) * scale, 2),
        "max": round(max(chosen) * scale, 2),
        "wall_median": round(statistics.median(wall) * scale, 2),
        "cpu_median": round(statistics.median(cpu) * scale, 2),
        "calls_per_round": calls,
        "rounds": len(wall),
    }


def _nothing(calls: int) -> None:
    return None


def alternate(calls: dict[str, Callable[[], object]], settings: Settings, scale: float,
              before: dict[str, Callable[[int], None]] | None = None) -> dict[str, dict]:  # fmt: skip
    """Time every callable in rounds, all of them each round in a rotating order; `before[name](n)` runs untimed
    ahead of `name`'s n calls. Per-call summaries (seconds times `scale`)."""
    before, names = before or {}, list(calls)
    wall_clock, cpu_clock = machine_limits.CLOCKS["wall"], machine_limits.CLOCKS["cpu"]
    sizing, per_round = machine_limits.CLOCKS[settings.clock], {}
    for name in names:  # warm up, then size each method's share of a round by the run's clock
        for _ in range(2):
            before.get(name, _nothing)(1)
            start = sizing()
            calls[name]()
        per_round[name] = max(1, min(500, round(settings.round_seconds / max(sizing() - start, 1e-9))))
    wall, cpu = {name: [] for name in names}, {name: [] for name in names}
    for index in range(settings.rounds):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            n, call = per_round[name], calls[name]
            before.get(name, _nothing)(n)
            start_wall, start_cpu = wall_clock(), cpu_clock()
            for _ in range(n):
                call()
            cpu[name].append((cpu_clock() - start_cpu) / n)
            wall[name].append((wall_clock() - start_wall) / n)
    return {name: summary(wall[name], cpu[name], per_round[name], scale, settings.clock) for name in names}


class ProjectBatch:
    """`Engine.step_rows` over `rows` generating rows (each of the typical call, its own draws, never finishing:
    `seconds` is huge), rebuilt untimed before a round would reach MAX_STEPS."""

    def __init__(self, engine: Engine, rows: int):
        self.engine, self.rows = engine, rows
        self.state = self.fresh()

    def fresh(self) -> BatchState:
        state = BatchState(self.engine, self.rows)
        for row in range(self.rows):
            events = typical_events(EVENTS, SEED + row)
            state.add(self.engine.prepare(events, 1e9, TEMPERATURE, SIGMA_TEMPERATURE, np.random.default_rng(row)))
        for _ in range(EVENTS):  # every row conditioned, each has drawn its first touch
            self.engine.step_rows(state)
        return state

    def headroom(self, calls: int) -> None:
        if int(self.state.steps.max()) + calls + 1 >= MAX_STEPS:
            self.state = self.fresh()

    def __call__(self) -> None:
        if self.engine.step_rows(self.state):
            raise RuntimeError("a batched row finished while timed.")


class PeerBatch:
    """A peer's one step for `rows` rows, from the states after the typical call, carried from step to step."""

    def __init__(self, peer: Peer, rows: int, scaled: np.ndarray):
        self.peer = peer
        _, states = peer.condition(scaled)
        self.states = [np.repeat(state, rows, axis=0) for state in states]
        self.x = np.repeat(scaled[-1:], rows, axis=0)

    def __call__(self) -> None:
        _, self.states = self.peer.step(self.x, self.states)


# ---- equality and drift --------------------------------------------------------------------------------------


def check_sequences(engine: Engine) -> tuple[np.ndarray, list]:
    """The typical call, scaled as the engine scales it, and CHECK_ROWS shorter prepared requests for the batched
    checks (their own events, never finishing)."""
    scaled = engine.prepare(typical_events(EVENTS, SEED), SECONDS, TEMPERATURE, SIGMA_TEMPERATURE,
                            np.random.default_rng(SEED)).scaled  # fmt: skip
    requests = [
        engine.prepare(
            typical_events(CHECK_STEPS, SEED + 1 + row), 1e9, TEMPERATURE, SIGMA_TEMPERATURE, np.random.default_rng(row)
        )  # fmt: skip
        for row in range(CHECK_ROWS)
    ]
    return scaled, requests


def project_batched_outputs(engine: Engine, requests: list) -> np.ndarray:
    """(T, rows, output) MDN outputs of `Engine.step_rows` conditioning the requests together, sigmas activated."""
    state = BatchState(engine, len(requests))
    for request in requests:
        state.add(request)
    outputs = []
    for _ in range(len(requests[0].scaled)):
        engine.step_rows(state)
        outputs.append(state.out[: len(requests)].copy())
    outputs = np.array(outputs)
    engine.activate_sigmas(outputs)
    return outputs


def drift(outputs: np.ndarray, reference: np.ndarray, engine: Engine) -> dict[str, float]:
    """Largest absolute differences of MDN outputs, their mus, sigmas and mixture weights (softmax of the logits
    at TEMPERATURE)."""
    md = engine.mixtures * engine.dimension

    def weights(out: np.ndarray) -> np.ndarray:
        logits = out[..., 2 * md :].astype(np.float64) / TEMPERATURE
        exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return exp / exp.sum(axis=-1, keepdims=True)

    def largest(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a.astype(np.float64) - b).max())

    relative = np.abs(outputs.astype(np.float64) - reference) / np.maximum(1.0, np.abs(reference))
    return {
        "mdn_max_abs_diff": largest(outputs, reference),
        "mdn_max_diff_relative_above_1": float(relative.max()),
        "mus_max_abs_diff": largest(outputs[..., :md], reference[..., :md]),
        "sigmas_max_abs_diff": largest(outputs[..., md : 2 * md], reference[..., md : 2 * md]),
        "mixture_weights_max_abs_diff": largest(weights(outputs), weights(reference)),
    }


def checks(engine: Engine, projects: dict[str, Engine], peers: dict[str, Peer], touches: dict[str, np.ndarray]):
    """Per method: its MDN outputs against the fp32 engine's (conditioning path, step by step and CHECK_ROWS rows
    batched; the largest difference counts) and its touches against the engine's for the same draws."""
    scaled, requests = check_sequences(engine)
    conditioning = engine.mdn_outputs(scaled)
    stepwise = engine.mdn_outputs(scaled, stepwise=True)
    batched = np.stack([engine.mdn_outputs(r.scaled, stepwise=True) for r in requests], axis=1)
    reference = touches["project_fp32"]
    found = {}
    for method in methods():
        if method in projects:
            project = projects[method]
            paths = [
                (project.mdn_outputs(scaled), conditioning),
                (project.mdn_outputs(scaled, stepwise=True), stepwise),
                (project_batched_outputs(project, requests), batched),
            ]
        else:
            peer = peers[method]
            rows = np.stack([r.scaled for r in requests], axis=1)
            paths = [
                (peer.condition(scaled)[0], conditioning),
                (peer.stepwise(scaled), stepwise),
                (peer.stepwise(rows), batched),
            ]
        measured = [drift(out, ref, engine) for out, ref in paths]
        result = {key: max(m[key] for m in measured) for key in measured[0]}
        ours = touches[method]
        same = len(ours) == len(reference) and float(np.abs(ours - reference).max()) <= TOUCH_TOLERANCE
        result |= {"touches": len(ours), "same_touches": same}
        if precision_of(method) == "fp32":
            result["within_tolerance"] = result["mdn_max_diff_relative_above_1"] <= FP32_TOLERANCE and same
        found[method] = result
    return found


# ---- one model, the whole run --------------------------------------------------------------------------------


def weight_bytes(artifact: spec.Artifact) -> dict[str, int]:
    """The weights' bytes in fp32, and with int8 matrices (biases stay fp32)."""
    arrays = artifact.arrays.values()
    return {"fp32": sum(a.size * 4 for a in arrays), "int8": sum(a.size * (1 if a.ndim == 2 else 4) for a in arrays)}


def measure_model(path: Path, settings: Settings, peak_gflops: float, log=print) -> dict:
    """Build every method on the artifact at `path`, check them, time their whole requests and batched steps."""
    artifact = spec.load(path)
    engine = Engine(artifact)
    projects = {f"project_{p}": project_engine(artifact, p) for p in PROJECT_PRECISIONS}
    started = time.perf_counter()
    peers = {method: build_peer(method, artifact) for method in PEERS}
    log(f"  built {', '.join(PEERS)} in {time.perf_counter() - started:.1f} s")
    events = typical_events(EVENTS, SEED)

    def request(method: str) -> Callable[[], np.ndarray]:
        if method in projects:
            project = projects[method]
            return lambda: project.continue_performance(events, seconds=SECONDS, temperature=TEMPERATURE,
                                                        sigma_temperature=SIGMA_TEMPERATURE,
                                                        rng=np.random.default_rng(SEED))  # fmt: skip
        peer = peers[method]
        return lambda: continuation(peer, engine, engine.prepare(events, SECONDS, TEMPERATURE, SIGMA_TEMPERATURE,
                                                                 np.random.default_rng(SEED)))  # fmt: skip

    requests = {method: request(method) for method in methods()}
    touches = {method: call() for method, call in requests.items()}
    found = checks(engine, projects, peers, touches)
    log(f"  checks: {json.dumps(found)}")
    request_ms = alternate(requests, settings, 1e3)
    log(f"  whole request, ms: {json.dumps({m: s['median'] for m, s in request_ms.items()})}")
    flops = 2 * sum(a.size for a in artifact.arrays.values() if a.ndim == 2)
    scaled = engine.prepare(events, SECONDS, TEMPERATURE, SIGMA_TEMPERATURE, np.random.default_rng(SEED)).scaled
    step_us = {}
    for rows in settings.batches:
        batches = {m: ProjectBatch(projects[m], rows) for m in projects}
        calls = {**batches, **{m: PeerBatch(peers[m], rows, scaled) for m in PEERS}}
        before = {m: batch.headroom for m, batch in batches.items()}
        step_us[str(rows)] = timed = alternate(calls, settings, 1e6, before)
        for result in timed.values():
            result["peak_fraction"] = float(f"{flops * rows / (result['median'] * 1e-6) / (peak_gflops * 1e9):.3g}")
        log(f"  B={rows} step, us: {json.dumps({m: s['median'] for m, s in timed.items()})}")
    sizes = weight_bytes(artifact)
    bandwidth = {p: round(machine_limits.read_bandwidth_gbps(n, clock=settings.clock), 1) for p, n in sizes.items()}
    return {
        "units": artifact.units,
        "layers": artifact.layers,
        "mixtures": artifact.mixtures,
        "weight_bytes": sizes,
        "flops_per_row_step": flops,
        "read_bandwidth_gbps": bandwidth,
        "floor_us_b1": {p: round(sizes[p] / (bandwidth[p] * 1e9) * 1e6, 2) for p in sizes},
        "generated_touches": len(touches["project_fp32"]),
        "request_ms": request_ms,
        "step_us": step_us,
        "checks": found,
    }


def targets() -> dict[str, str]:
    """What each side ran on: the project's build target, and the peers' (CPUID dispatch, the host's best)."""
    from threadpoolctl import threadpool_info

    from service.batch_kernels import TILES

    blas = next((pool.get("architecture") for pool in threadpool_info() if pool.get("internal_api") == "openblas"), "")
    extensions = [name for name, present in machine_limits.vector_extensions().items() if present]
    avx2 = os.environ.get(AVX2_FLAG) == "1"
    project = "AVX2 target" if avx2 else "host CPU"
    tiles = f"{TILES.rows}x{TILES.vectors * TILES.width}"  # rows x output columns per register tile
    return {
        "project": f"{project}: Numba {os.environ.get('NUMBA_CPU_NAME', 'host')} target with {tiles} tiles, "
        f"OpenBLAS {blas} kernels, NumPy {'without AVX-512' if avx2 else 'host'} loops",
        "peers": f"host CPUID dispatch (cannot be restricted): {', '.join(extensions) or 'baseline'} available",
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("numpy", "numba", "onnxruntime", "onnx", "ai-edge-litert", "tensorflow-cpu"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def measure(models: dict[str, Path], settings: Settings, log=print) -> dict:
    """The whole record: the machine, then every model's methods."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        load_before = os.getloadavg()[0]
        peak = machine_limits.sgemm_peak_gflops(settings.peak_size, clock=settings.clock)
        log(f"sgemm peak on one core: {peak:.1f} GFLOP/s")
        record = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpu": machine_limits.cpu_model(),
                "cpu_family_model": machine_limits.family_model(),
                "vcpus": os.cpu_count(),
                "extensions": machine_limits.vector_extensions(),
                "platform": f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
                "sgemm_peak_gflops": round(peak, 1),
            },
            "targets": targets(),
            "versions": versions(),
            "settings": {
                "rounds": settings.rounds,
                "round_seconds": settings.round_seconds,
                "batches": list(settings.batches),
                "threads": 1,
                "clock": settings.clock,
                "cores": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                "request": {
                    "events": EVENTS,
                    "seconds": SECONDS,
                    "temperature": TEMPERATURE,
                    "sigma_temperature": SIGMA_TEMPERATURE,
                    "seed": SEED,
                },  # fmt: skip
                "fp32_tolerance": FP32_TOLERANCE,
            },
            "models": {},
        }
        for label, path in models.items():
            log(f"{label}:")
            record["models"][label] = measure_model(path, settings, peak, log)
        record["load_average_1min_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return record


def failures(record: dict) -> list[str]:
    """The fp32 methods outside the tolerance (or with other touches), as `model: method`."""
    return [
        f"{label}: {method}"
        for label, model in record["models"].items()
        for method, found in model["checks"].items()
        if found.get("within_tolerance") is False
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 short rounds: a check that everything runs")
    parser.add_argument("--rounds", type=int, default=Settings.rounds, help="alternating rounds per measurement")
    parser.add_argument("--avx2", action="store_true", help="build the project for an AVX2 target (see above)")
    clock = "the time the tables report: wall, or the thread's CPU time (steadier on a shared machine)"
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help=clock)
    parser.add_argument("--core", type=int, default=None, help="the core to pin to (default: the last allowed)")
    parser.add_argument(
        "--out", type=Path, default=None, help="default: benchmarks/peers.json (--avx2: peers-avx2.json)"
    )
    args = parser.parse_args(argv)
    args.out = args.out or (PEERS_AVX2_RESULTS if args.avx2 else PEERS_RESULTS)
    if args.avx2 and os.environ.get(AVX2_FLAG) != "1":  # the targets are read when NumPy and Numba load: re-run
        os.environ.update(AVX2_ENVIRONMENT)
        os.execv(sys.executable, [sys.executable, "-m", "benchmarks.peers", *(sys.argv[1:] if argv is None else argv)])
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core if args.core is not None else max(os.sched_getaffinity(0))})
    settings = Settings(rounds=args.rounds, clock=args.clock)
    if args.quick:
        settings.rounds, settings.round_seconds = 3, 0.01
    with tempfile.TemporaryDirectory() as tmp:
        random = write_random_artifact(Path(tmp) / "2x512.npz", units=512, layers=2, mixtures=5, seed=0)
        record = measure({"2x256 shipped": SHIPPED_WEIGHTS, "2x512 random": random}, settings)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print()
    print(peers_tables(record))
    print(f"\nwrote {args.out}")
    if bad := failures(record):
        print(f"fp32 methods outside {FP32_TOLERANCE} or with other touches: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
