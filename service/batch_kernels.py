"""The batching loop's inner loops, compiled once by Numba: its matrix product, its draw, its feed and its cell.

`matmul_rows`: `z[:B, lo:lo+K] @ W + bias`, reading W once. NumPy's matmul would call OpenBLAS's sgemm, which first
copies ("packs") the whole weight matrix into its own layout on every call; for the 2-32 rows of an iteration that
copy costs more than the arithmetic (`python -m benchmarks.kernel`: 2-4 rows of a 1024x2048 layer at ~2.9x a single
row's matrix-vector product, 16 rows at ~4x; this kernel: ~1.1x and ~2.7x). This kernel takes the
weights transposed once at load, to `(N, K)`, and computes 4 rows x 4 weight rows at a time where AVX-512 gives 32
vector registers (4 x 3 with AVX2's 16: `tile_columns`): 16 or 12 running sums in registers, each a dot product over
K that the compiler vectorises, so every weight is read once per call and the cost is bound by the arithmetic of B
rows, not by copying. The rows and columns left over go one at a time. Its sums run in another order than BLAS's
(float32 rounding, not bit for bit): only `reassoc` and `contract` of fastmath are allowed, NaN and infinity keep
their meaning.

`sample_rows`: RoboJam's draw (ARTIFACT.md, Sampling 3) for every row that has finished conditioning, with exactly
the engine Sampler's arithmetic (the mixture choice in float64 with libm's exp, the touch in float32 but its sigma's
expm1 libm's in float64, no fastmath), so one Python call replaces a dozen small NumPy calls per iteration and gives
the Sampler's touch, bit for bit, for the same draws.

`feed_rows` gives each conditioning row its next event; `gates_rows` and `output_rows` are the LSTM cell's steps
around NumPy's tanh, in the engine cell's order (bit for bit).

All are compiled eagerly for their one signature at import (~2 s, once per process: the app is preloaded in
gunicorn's master), never at request time, and nothing is written to disk. tests/test_batch_kernels.py holds them to
NumPy and to the engine's Sampler.
"""

from __future__ import annotations

import math

import llvmlite.binding
import numba
import numpy as np

from service.engine import MAX_STEPS, MIN_DT

_MATRIX = numba.types.Array(numba.float32, 2, "C")
_WEIGHTS = numba.types.Array(numba.float32, 2, "C", readonly=True)
_BIAS = numba.types.Array(numba.float32, 1, "C", readonly=True)
_ROWS = numba.types.Array(numba.int64, 1, "C")
_F64 = numba.types.Array(numba.float64, 1, "C")
_F64_2D = numba.types.Array(numba.float64, 2, "C")
_F32_3D = numba.types.Array(numba.float32, 3, "C")
_FLAGS = numba.types.Array(numba.boolean, 1, "C")
ROWS = 4  # batch rows per register tile


def tile_columns() -> int:
    """Weight rows per register tile for the CPU Numba compiles for: 4 x 4 running sums where AVX-512 gives 32
    vector registers, 4 x 3 where AVX2 gives 16 (4 x 4 spills there: measured ~30 % slower on an AVX2 target)."""
    features = numba.config.CPU_FEATURES or llvmlite.binding.get_host_cpu_features().flatten()
    return 4 if "+avx512f" in features.split(",") else 3


def _tile_source(columns: int) -> str:
    """The unrolled source of `matmul_rows` for ROWS x `columns` tiles (the running sums must be plain locals for
    the compiler to keep them in registers, so the loop body is written out, not indexed)."""
    rows, cols = range(ROWS), range(columns)
    tile = [f"s{r}_{c}" for r in rows for c in cols]
    lines = [
        "def matmul_rows(z, lo, rows, wt, bias, out):",
        "    n_out, k_in = wt.shape",
        f"    hi, full, wide = lo + k_in, rows - rows % {ROWS}, n_out - n_out % {columns}",
        f"    for n0 in range(0, wide, {columns}):",
        *(f"        w{c}, bias{c} = wt[n0 + {c}], bias[n0 + {c}]" for c in cols),  # 1-D row views: k vectorises
        f"        for b0 in range(0, full, {ROWS}):",
        *(f"            x{r} = z[b0 + {r}, lo:hi]" for r in rows),
        "            " + " = ".join(tile) + " = np.float32(0.0)",
        "            for k in range(k_in):",
        *(f"                a{r} = x{r}[k]" for r in rows),
        *(f"                c{c} = w{c}[k]" for c in cols),
        *(f"                s{r}_{c} += a{r} * c{c}" for r in rows for c in cols),
        *(f"            out[b0 + {r}, n0 + {c}] = s{r}_{c} + bias{c}" for r in rows for c in cols),
        "        for b in range(full, rows):  # the last rows, one at a time",
        "            x = z[b, lo:hi]",
        "            " + " = ".join(f"t{c}" for c in cols) + " = np.float32(0.0)",
        "            for k in range(k_in):",
        *(f"                t{c} += x[k] * w{c}[k]" for c in cols),
        *(f"            out[b, n0 + {c}] = t{c} + bias{c}" for c in cols),
        "    for n in range(wide, n_out):  # the last columns, one at a time",
        "        w = wt[n]",
        "        for b in range(rows):",
        "            x = z[b, lo:hi]",
        "            t = np.float32(0.0)",
        "            for k in range(k_in):",
        "                t += x[k] * w[k]",
        "            out[b, n] = t + bias[n]",
    ]
    return "\n".join(lines) + "\n"


def compile_matmul(columns: int):
    """`matmul_rows` compiled for ROWS x `columns` tiles: out[:rows] = z[:rows, lo:lo+K] @ wt.T + bias, for the
    weights transposed to (N, K) by `transposed`."""
    namespace = {"np": np}
    exec(compile(_tile_source(columns), f"<matmul_rows {ROWS}x{columns}>", "exec"), namespace)
    return numba.njit(
        numba.void(_MATRIX, numba.int64, numba.int64, _WEIGHTS, _BIAS, _MATRIX),
        fastmath={"reassoc", "contract"},
        boundscheck=False,
        nogil=True,
        cache=False,
    )(namespace["matmul_rows"])


matmul_rows = compile_matmul(tile_columns())


def transposed(weights: np.ndarray) -> np.ndarray:
    """A (K, N) weight matrix as the kernel reads it: (N, K), C-contiguous, float32, read-only."""
    if weights.ndim != 2:
        raise ValueError(f"weights must be a (K, N) matrix, got shape {weights.shape}.")
    wt = np.ascontiguousarray(weights.T, dtype=np.float32)
    wt.setflags(write=False)
    return wt


@numba.njit(
    numba.int64(
        _MATRIX,
        _ROWS,
        _ROWS,
        numba.int64,
        numba.float32,
        numba.float32,
        _F64_2D,
        _F32_3D,
        _F32_3D,
        _ROWS,
        _F64,
        _F64,
        _F64,
        _MATRIX,
        _FLAGS,
    ),  # fmt: skip
    boundscheck=False,
    nogil=True,
    cache=False,
)
def sample_rows(
    out,
    rows,
    slots,
    mixtures,
    scale,
    epsilon,
    choices,
    noise,
    generated,
    steps,
    total,
    seconds,
    inv_temperature,
    z,
    finished,
):  # pragma: no cover - compiled; tested through its results
    """Draw the next touch for each row in `rows` from its raw MDN output `out[row]`, into `generated[slot, step]`.

    Per-request arrays are indexed by the row's slot (`slots[row]`): its up-front draws (`choices`, `noise`), its
    touches, step count, dt total, length and 1/temperature. A row whose dt total reaches its length, or that
    reaches MAX_STEPS, is marked in `finished`; every other row's touch is fed back, scaled, into `z[row, :d]`.
    Returns the number of rows marked finished.
    """
    d = generated.shape[2]
    md = mixtures * d
    done = 0
    for i in range(rows.shape[0]):
        row = rows[i]
        slot = slots[row]
        step = steps[slot]
        # The mixture: as Sampler.choose, in float64 with libm's exp (np.float64, not float(): Numba's float() of a
        # float32 stays float32, and a float32 `logit - top` rounds where the Sampler's float64 one is exact).
        top = np.float64(out[row, 2 * md])
        for m in range(1, mixtures):
            top = max(top, np.float64(out[row, 2 * md + m]))
        weight_sum = 0.0
        for m in range(mixtures):
            logit = np.float64(out[row, 2 * md + m])
            weight_sum += 1.0 if logit == top else math.exp((logit - top) * inv_temperature[slot])
        threshold = choices[slot, step] * weight_sum
        logit = np.float64(out[row, 2 * md])
        chosen, acc = 0, 1.0 if logit == top else math.exp((logit - top) * inv_temperature[slot])
        while acc < threshold and chosen < mixtures - 1:
            chosen += 1
            logit = np.float64(out[row, 2 * md + chosen])
            acc += 1.0 if logit == top else math.exp((logit - top) * inv_temperature[slot])
        begin = chosen * d
        for j in range(d):  # the touch: as Sampler.sample, in float32
            raw = out[row, md + begin + j]
            negative = np.float32(math.expm1(np.float64(min(raw, np.float32(0.0)))))  # as Sampler: libm's, float64
            sigma = max(raw, np.float32(0.0)) + negative
            sigma += np.float32(1.0)
            sigma += epsilon
            value = sigma * noise[slot, step, j]
            value += out[row, begin + j]
            value /= scale
            low = np.float32(MIN_DT) if j == d - 1 else np.float32(0.0)
            if not value >= low:  # as np.fmax: a NaN becomes the bound too
                value = low
            if j < d - 1 and not value <= np.float32(1.0):
                value = np.float32(1.0)
            generated[slot, step, j] = value
        steps[slot] = step + 1
        total[slot] += float(generated[slot, step, d - 1])
        if total[slot] >= seconds[slot] or step + 1 >= MAX_STEPS:
            finished[row] = True
            done += 1
        else:
            for j in range(d):
                z[row, j] = generated[slot, step, j] * scale
    return done


@numba.njit(
    numba.int64(_MATRIX, _ROWS, numba.int64, _ROWS, _ROWS, _F32_3D, _ROWS),
    boundscheck=False,
    nogil=True,
    cache=False,
)
def feed_rows(z, slots, n, pos, rows, scaled, sampling):  # pragma: no cover - compiled; tested through its results
    """Before an iteration: each of rows 0..n-1 still conditioning gets its next scaled input event in `z[row, :d]`
    (and its slot's position moves on); the rows that have none left, i.e. will draw after this step, are written to
    `sampling`. Returns how many were written."""
    d = scaled.shape[2]
    count = 0
    for row in range(n):
        slot = slots[row]
        at = pos[slot]
        if at < rows[slot]:
            for j in range(d):
                z[row, j] = scaled[slot, at, j]
            pos[slot] = at + 1
            if at + 1 < rows[slot]:
                continue
        sampling[count] = row
        count += 1
    return count


@numba.njit(numba.void(_MATRIX, _MATRIX, numba.int64), boundscheck=False, nogil=True, cache=False)
def gates_rows(g, c, n):  # pragma: no cover - compiled; tested through its results
    """The LSTM cell between its two tanh calls, for rows 0..n-1, with the engine cell's operations in its order:
    `g` holds tanh of the pre-activations `[i/2, f/2, o/2, c~]`; the sigmoid gates become `0.5 * t + 0.5` in place
    and the cell state `c = f * c + i * c~` (no fused multiply-add, so every rounding is the engine's)."""
    u = c.shape[1]
    for b in range(n):
        i, f, o, cand, state = g[b, :u], g[b, u : 2 * u], g[b, 2 * u : 3 * u], g[b, 3 * u :], c[b]  # 1-D: vectorises
        for j in range(u):
            o[j] = o[j] * np.float32(0.5) + np.float32(0.5)
            state[j] = (f[j] * np.float32(0.5) + np.float32(0.5)) * state[j] + (
                i[j] * np.float32(0.5) + np.float32(0.5)
            ) * cand[j]


@numba.njit(numba.void(_MATRIX, _MATRIX, _MATRIX, numba.int64, numba.int64), boundscheck=False, nogil=True, cache=False)
def output_rows(g, tanh_c, z, lo, n):  # pragma: no cover - compiled; tested through its results
    """The cell's last step for rows 0..n-1: h = o * tanh(c), written into the state rows `z[:, lo:lo+u]`."""
    u = tanh_c.shape[1]
    for b in range(n):
        o, t, h = g[b, 2 * u : 3 * u], tanh_c[b], z[b, lo : lo + u]
        for j in range(u):
            h[j] = o[j] * t[j]
