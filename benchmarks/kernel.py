"""`python -m benchmarks.kernel`: the batching loop's product, NumPy/OpenBLAS vs the compiled kernel (not a test).

For the stacked LSTM weights of 2x256 and 2x512 models and batch sizes 1-32, one `(B, K) @ (K, N) + bias` each
way, in one run on one core: microseconds per call and the cost of B rows relative to one row (the ideal for a
product that reads the weights once is close to 1 for small B). Why the kernel exists: service/batch_kernels.py.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from service.batch_kernels import matmul_rows, packed

SHAPES = {"2x256 layer 0": (259, 1024), "2x256 layer 1": (512, 1024), "2x512 layer 0": (515, 2048),
          "2x512 layer 1": (1024, 2048)}  # fmt: skip
ROWS = (1, 2, 4, 8, 16, 32)


def best_of(call, repeats: int = 5, number: int = 50) -> float:
    """The fastest mean over `repeats` runs of `number` calls, in microseconds."""
    call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            call()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def measure(weights: np.ndarray, bias: np.ndarray, rows: int, z: np.ndarray) -> tuple[float, float]:
    """Microseconds per `(rows, K) @ W + bias`: NumPy (OpenBLAS) and the kernel; their results must agree."""
    layout = packed(weights, bias)
    out, mine = np.empty((rows, weights.shape[1]), np.float32), np.empty((rows, weights.shape[1]), np.float32)
    blas = best_of(lambda: np.add(np.matmul(z[:rows], weights, out=out), bias, out=out))
    kernel = best_of(lambda: matmul_rows(z, 0, rows, layout, mine))
    np.testing.assert_allclose(mine, out, rtol=1e-4, atol=1e-3)
    return blas, kernel


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rng = np.random.default_rng(0)
    print("| weights | K x N | rows | NumPy us | kernel us | NumPy / kernel | NumPy rows/1 | kernel rows/1 |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, (k, n) in SHAPES.items():
        weights = rng.standard_normal((k, n)).astype(np.float32)
        bias = rng.standard_normal(n).astype(np.float32)
        bias.setflags(write=False)
        z = rng.standard_normal((max(ROWS), k)).astype(np.float32)
        one = None
        for rows in ROWS:
            blas, kernel = measure(weights, bias, rows, z)
            one = one or (blas, kernel)
            print(f"| {label} | {k} x {n} | {rows} | {blas:.0f} | {kernel:.0f} | {blas / kernel:.2f} "
                  f"| {blas / one[0]:.2f} | {kernel / one[1]:.2f} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
