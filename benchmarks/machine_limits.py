"""What one core of this machine can do, measured: its CPU model and vector extensions, its single-core sgemm peak
(a large NumPy float32 matrix product, one thread) and its single-core read bandwidth over a buffer of a given
size (a float32 matrix-vector product over it: every byte read once, two flops per four bytes, so the read bounds
it). `make bench-peers` reports each batched step as a fraction of the peak and each B = 1 step against the
weight-streaming floor (the weights' bytes over the read bandwidth at their size).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

EXTENSIONS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
PEAK_SIZE = 2048
GEMV_COLUMNS = 256


def cpuinfo_field(name: str) -> str | None:
    """The first `name : value` of /proc/cpuinfo, or None off Linux."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.split(":", 1)[0].strip() == name), None)


def cpu_model() -> str:
    return cpuinfo_field("model name") or platform.processor() or "unknown CPU"


def family_model() -> str:
    """`family/model` from CPUID (e.g. AMD 25/17 is Zen 4): a virtual machine's model name often omits it."""
    return f"{cpuinfo_field('cpu family')}/{cpuinfo_field('model')}"


def vector_extensions() -> dict[str, bool]:
    """Which of EXTENSIONS the CPU reports (the kernels a runtime that dispatches by CPUID may pick)."""
    flags = set((cpuinfo_field("flags") or "").split())
    return {name: name in flags for name in EXTENSIONS}


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}  # the calling thread's CPU time: one BLAS thread


def best_seconds(call, repeats: int, clock: str) -> float:
    """The fastest of `repeats` calls (after one to warm up) by `clock` (a CLOCKS key)."""
    now = CLOCKS[clock]
    call()
    best = float("inf")
    for _ in range(repeats):
        start = now()
        call()
        best = min(best, now() - start)
    return best


def sgemm_peak_gflops(size: int = PEAK_SIZE, repeats: int = 5, clock: str = "wall") -> float:
    """GFLOP/s of the fastest `size`^3 float32 product (run under one BLAS thread: see `benchmarks.peers`)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32)
    out = np.empty_like(a)
    return 2 * size**3 / best_seconds(lambda: np.matmul(a, b, out=out), repeats, clock) / 1e9


def read_bandwidth_gbps(nbytes: int, repeats: int = 50, clock: str = "wall") -> float:
    """GB/s reading a float32 buffer of about `nbytes` (warm: in whichever cache level holds it)."""
    rows = max(1, -(-nbytes // (4 * GEMV_COLUMNS)))
    matrix = np.ones((rows, GEMV_COLUMNS), dtype=np.float32)
    vector, out = np.ones(GEMV_COLUMNS, dtype=np.float32), np.empty(rows, dtype=np.float32)
    return matrix.nbytes / best_seconds(lambda: np.matmul(matrix, vector, out=out), repeats, clock) / 1e9
