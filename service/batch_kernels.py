"""The batching loop's inner loops, compiled once by Numba: its matrix product, its draw, its feed and its cell.

`matmul_rows`: `z[:B, lo:lo+K] @ W + bias`, reading W once. NumPy's matmul would call OpenBLAS's sgemm, which first
copies ("packs") the whole weight matrix into its own layout on every call; for the 2-32 rows of an iteration that
copy costs more than the arithmetic (`python -m benchmarks.kernel`). This kernel packs once, at load (`packed`): W and
its bias in panels of one register tile's width of output columns, `(panels, 1 + K, panel)`, the bias as row 0, so
a tile reads its panel front to back. Each tile is an outer-product micro-kernel (`_microkernel`, LLVM vectors
through a Numba intrinsic): 8 rows x 2 zmm vectors (32 columns) of running sums where AVX-512 gives 32 vector
registers, 4 rows x 3 ymm vectors where AVX2 gives 16 (`tile_shape`); per k it loads the panel's weight vectors
once and broadcasts one activation per row into fused multiply-adds: no horizontal sums, and it runs at the core's
FMA peak from 8 rows up. Measured against the previous kernel (4 rows x 4 weight rows
of dot products over K, horizontal sums at the end) and other tiles on a Zen 5 core, one process, alternating: 8x2
and 8x3 zmm tiles at the same speed (the FMA peak), 16x1 5 % and 2x8 20 % slower, the old kernel 1.3x slower at
16 rows; 8x2 needs no N multiple of 48 (4 * units is a multiple of 32) and no spills when LLVM hoists the
broadcasts. For AVX2 (Numba compiling for znver3, same core): 4x3 ymm tiles 10 % faster than 4x2 and 2x4, 6x2 and
8x1 15-20 % slower (spills). A full-height tile also prefetches the weights a few KB ahead of the row it reads
(PREFETCH_AHEAD: weights that do not fit in L2 arrive in time). Rows left over take tiles of 4, 2 and 1 rows (each
tile height costs compile time at import); a last panel narrower than the tile lands in scratch first. Sums run in
another order than BLAS's and with one rounding per multiply-add (float32 rounding, not bit for bit; K_BLOCK says
how close); NaN and infinity keep their meaning.

`sample_rows`: RoboJam's draw (ARTIFACT.md, Sampling 3) for every row that has finished conditioning, with exactly
the engine Sampler's arithmetic (the mixture choice in float64 with libm's exp, the touch in float32 but its sigma's
expm1 libm's in float64, no fastmath), so one Python call replaces a dozen small NumPy calls per iteration and gives
the Sampler's touch, bit for bit, for the same draws.

`feed_rows` gives each conditioning row its next event; `cell_rows` is the LSTM cell, for one row or many (the engine
has no other); `condition_rows` runs one layer over a row's conditioning events, products and cells, in one call.

All are compiled eagerly for their one signature at import (~2 s, once per process: the app is preloaded in
gunicorn's master), never at request time, and nothing is written to disk. tests/test_batch_kernels.py holds them to
NumPy and to the engine's Sampler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import llvmlite.binding
import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.extending import intrinsic

from service.engine import MAX_STEPS, MIN_DT

_MATRIX = numba.types.Array(numba.float32, 2, "C")
_PACKED = numba.types.Array(numba.float32, 3, "C", readonly=True)
_ROWS = numba.types.Array(numba.int64, 1, "C")
_F64 = numba.types.Array(numba.float64, 1, "C")
_F64_2D = numba.types.Array(numba.float64, 2, "C")
_F32_3D = numba.types.Array(numba.float32, 3, "C")
_FLAGS = numba.types.Array(numba.boolean, 1, "C")


@dataclass(frozen=True)
class Tiles:
    """The product's register tile: `rows` batch rows x `vectors` vectors of `width` float32 output columns."""

    rows: int
    vectors: int
    width: int

    @property
    def panel(self) -> int:
        """Output columns per packed weight panel (one full tile wide)."""
        return self.vectors * self.width


AVX512_TILES = Tiles(rows=8, vectors=2, width=16)  # 16 accumulators + 2 weights + 8 broadcasts of 32 zmm
AVX2_TILES = Tiles(rows=4, vectors=3, width=8)  # 12 accumulators + 3 weights + 1 broadcast of 16 ymm


def tile_shape() -> Tiles:
    """The tile for the CPU Numba compiles for: 8 rows x 2 zmm vectors where AVX-512 gives 32 vector registers,
    4 rows x 3 ymm vectors where AVX2 gives 16 (see the module docstring for why these)."""
    features = numba.config.CPU_FEATURES or llvmlite.binding.get_host_cpu_features().flatten()
    return AVX512_TILES if "+avx512f" in features.split(",") else AVX2_TILES


def _microkernel(rows: int, vectors: int, width: int, ahead: int):
    """An intrinsic for one register tile: `out[r, :vectors*width] = sum_k x[r, k] * w[k] + init[r]` for r < rows.

    Arguments are addresses and strides in float32 elements: `x` (a row stride apart, K values each), the panel's
    weight rows `w` (`w_stride` apart), K >= 1, the starting sums `init` (rows `init_stride` apart: 0 for a bias row
    shared by all rows, or `out` itself to go on summing) and `out` (rows `out_stride` apart). The sums are
    LLVM vectors kept in registers over the whole loop over K; each step loads `vectors` weight vectors once and
    broadcasts one activation per row into fused multiply-adds (`llvm.fma`: one rounding each). With `ahead` > 0,
    each step also prefetches the weight bytes `ahead` bytes past its own row (a hint: the sums are the same)."""

    @intrinsic
    def tile(typingctx, x, x_stride, w, w_stride, k_in, init, init_stride, out, out_stride):
        def codegen(context, builder, signature, args):
            f32, i32, i64 = ir.FloatType(), ir.IntType(32), ir.IntType(64)
            vec = ir.VectorType(f32, width)
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vec, [vec] * 3), f"llvm.fma.v{width}f32"
            )
            byte = ir.IntType(8).as_pointer()
            prefetch = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32]), "llvm.prefetch.p0"
            )
            x, x_stride, w, w_stride, k_in, init, init_stride, out, out_stride = (
                context.cast(builder, value, kind, types.int64)
                for value, kind in zip(args, signature.args, strict=True)
            )
            xp, wp, ip, op = (builder.inttoptr(a, f32.as_pointer()) for a in (x, w, init, out))

            def at(pointer, offset):
                return builder.gep(pointer, [offset if isinstance(offset, ir.Value) else ir.Constant(i64, offset)])

            def load_vector(pointer):
                return builder.load(builder.bitcast(pointer, vec.as_pointer()), align=4)

            x_rows = [at(xp, builder.mul(ir.Constant(i64, r), x_stride)) for r in range(rows)]
            init_rows = [at(ip, builder.mul(ir.Constant(i64, r), init_stride)) for r in range(rows)]
            zero = ir.Constant(vec, None)
            entry, loop = builder.basic_block, builder.append_basic_block("tile_loop")
            done = builder.append_basic_block("tile_done")
            builder.branch(loop)
            builder.position_at_end(loop)
            k = builder.phi(i64)
            sums = [[builder.phi(vec) for _ in range(vectors)] for _ in range(rows)]
            weights = at(wp, builder.mul(k, w_stride))
            columns = [load_vector(at(weights, c * width)) for c in range(vectors)]
            for line in range(0, 4 * vectors * width, 64) if ahead else ():  # each 64-byte line of a row, ahead
                target = builder.bitcast(at(weights, (ahead + line) // 4), byte)  # read, keep in all caches, data
                builder.call(prefetch, [target, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
            lane0, broadcast = ir.Constant(i32, 0), ir.Constant(ir.VectorType(i32, width), None)
            summed = []
            for r in range(rows):
                a = builder.insert_element(
                    ir.Constant(vec, ir.Undefined), builder.load(at(x_rows[r], k), align=4), lane0
                )
                a = builder.shuffle_vector(a, ir.Constant(vec, ir.Undefined), broadcast)
                summed.append([builder.call(fma, [a, columns[c], sums[r][c]]) for c in range(vectors)])
            k_next = builder.add(k, ir.Constant(i64, 1))
            builder.cbranch(builder.icmp_signed("<", k_next, k_in), loop, done)
            k.add_incoming(ir.Constant(i64, 0), entry)
            k.add_incoming(k_next, loop)
            for r in range(rows):
                for c in range(vectors):
                    sums[r][c].add_incoming(zero, entry)
                    sums[r][c].add_incoming(summed[r][c], loop)
            builder.position_at_end(done)
            for r in range(rows):  # the block's sums, then what they add to: as BLAS adds the bias last
                out_row = at(op, builder.mul(ir.Constant(i64, r), out_stride))
                for c in range(vectors):
                    total = builder.fadd(summed[r][c], load_vector(at(init_rows[r], c * width)))
                    builder.store(total, builder.bitcast(at(out_row, c * width), vec.as_pointer()), align=4)
            return context.get_dummy_value()

        return types.void(x, x_stride, w, w_stride, k_in, init, init_stride, out, out_stride), codegen

    return tile


def _row_pieces(tiles: Tiles) -> list[int]:
    """The tile heights compiled: the full tile, then halves down to one row (8, 4, 2, 1), so any row count is
    whole tiles plus at most one tile of each smaller height (fewer variants: each adds compile time at import)."""
    pieces = [tiles.rows]
    while pieces[-1] > 1:
        pieces.append(pieces[-1] // 2)
    return pieces


def _driver_source(tiles: Tiles) -> str:
    """The source of `matmul_rows` for `tiles`: per weight panel, whole row tiles, then the rows left in smaller
    tiles, each through the tile intrinsic of its height (`tile{rows}`, chosen by an if-chain: intrinsics cannot be
    indexed), K_BLOCK weight rows at a time. A panel narrower than the tile (the last one, when N is not a multiple)
    lands in scratch first."""
    dispatch = []
    for r in _row_pieces(tiles):
        dispatch += [
            f"                {'if' if r == tiles.rows else 'elif'} r == {r}:",
            f"                    tile{r}(x + 4 * k0, z_stride, block, panel, k, init, step, dst, dst_stride)",
        ]
    lines = [  # addresses by arithmetic, no slices: each slice or copy would compile helpers at import
        "def matmul_rows(z, lo, rows, packed, out):",
        "    panels, k_in, panel = packed.shape[0], packed.shape[1] - 1, packed.shape[2]",
        "    n_out, z_stride, out_stride = out.shape[1], z.shape[1], out.shape[1]",
        f"    scratch = np.empty(({tiles.rows}, panel), np.float32)",
        "    z_at, w_at, out_at, scratch_at = z.ctypes.data, packed.ctypes.data, out.ctypes.data, scratch.ctypes.data",
        "    for p in range(panels):",
        "        n0 = p * panel",
        "        n = min(panel, n_out - n0)",
        "        w = w_at + 4 * p * (k_in + 1) * panel",
        "        b0 = 0",
        "        while b0 < rows:",
        "            x = z_at + 4 * (b0 * z_stride + lo)",
        "            dst, dst_stride = scratch_at, panel",
        "            if n == panel:",
        "                dst, dst_stride = out_at + 4 * (b0 * out_stride + n0), out_stride",
        "            r = " + " ".join(f"{r} if rows - b0 >= {r} else" for r in _row_pieces(tiles)[:-1]) + " 1",
        "            init, step = w, 0  # the bias row, then the sums so far",
        "            for k0 in range(0, k_in, K_BLOCK):",
        "                k, block = min(K_BLOCK, k_in - k0), w + 4 * (1 + k0) * panel",
        *dispatch,
        "                init, step = dst, dst_stride",
        "            if n < panel:",
        "                for i in range(r):",
        "                    for j in range(n):",
        "                        out[b0 + i, n0 + j] = scratch[i, j]",
        "            b0 += r",
    ]
    return "\n".join(lines) + "\n"


# How far ahead of its weight row a full-height tile prefetches, in bytes (32 rows of a 32-column panel). A 2x512
# step reads 12.6 MB of weights from L3, which the core's own prefetchers fetch too late for 8-row tiles: measured
# on a Zen 4 core (one process, alternating), the 2x512 layer products at B=8 and B=16 ~13 % faster with it (1024
# bytes: ~9 %, 8192 and 16384: the same as 4096), 23 % at B=12, 10 % at B=32; AVX2 (4x3 ymm, haswell) 12 % at B=16.
# The whole 2x512 step (Engine.step_rows) at B=16: 0.80-0.84x (AVX2 0.93x); 2x256's within the noise. Only the
# full-height tile prefetches: in a 1- or 2-row tile (the lone request) the extra loads cost ~19 %.
PREFETCH_AHEAD = 4096


def compile_matmul(tiles: Tiles, ahead: int = PREFETCH_AHEAD):
    """`matmul_rows` compiled for `tiles`: out[:rows] = z[:rows, lo:lo+K] @ W + bias, for W and bias packed by
    `packed(W, bias, tiles)` and `out` exactly N columns wide; its full-height tiles prefetch `ahead` bytes ahead
    (0: none; the same sums either way)."""
    namespace = {"np": np, "K_BLOCK": K_BLOCK}
    for r in _row_pieces(tiles):
        namespace[f"tile{r}"] = _microkernel(r, tiles.vectors, tiles.width, ahead if r == tiles.rows else 0)
    exec(compile(_driver_source(tiles), f"<matmul_rows {tiles}>", "exec"), namespace)
    return numba.njit(
        numba.void(_MATRIX, numba.int64, numba.int64, _PACKED, _MATRIX),
        boundscheck=False,
        nogil=True,
        cache=False,
    )(namespace["matmul_rows"])


# Weight rows per pass of a tile: one float32 chain of sums over all of K rounds more than BLAS's blocked sums; each
# tile sums K_BLOCK rows from zero and adds the sums so far (the bias first) at its end, as BLAS does. For a
# 16 x 1539 x 2048 product (2x512 layer 1): max error vs float64 2.1e-6 (OpenBLAS 3.3e-6; one chain 7.0e-6, and
# 1.3e-5 with the bias as the chain's start).
K_BLOCK = 256
TILES = tile_shape()
matmul_rows = compile_matmul(TILES)


def packed(weights: np.ndarray, bias: np.ndarray, tiles: Tiles = TILES) -> np.ndarray:
    """A (K, N) weight matrix and its (N,) bias as the kernel reads them: panels of `tiles.panel` output columns,
    `(panels, 1 + K, panel)` float32, row 0 of each the bias, the last panel zero-padded; C-contiguous, read-only."""
    if weights.ndim != 2 or bias.shape != (weights.shape[1],) or weights.shape[0] < 1:
        raise ValueError(f"weights must be a (K >= 1, N) matrix and bias (N,), got {weights.shape} and {bias.shape}.")
    k, n = weights.shape
    panels = -(-n // tiles.panel)
    padded = np.zeros((1 + k, panels * tiles.panel), dtype=np.float32)
    padded[0, :n], padded[1:, :n] = bias, weights
    layout = np.ascontiguousarray(padded.reshape(1 + k, panels, tiles.panel).transpose(1, 0, 2))
    layout.setflags(write=False)
    return layout


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


# tanh as a rational function (Eigen's float tanh: odd degree-13 numerator over even degree-6 denominator on
# [-7.905, 7.905], where float32 tanh reaches 1; x itself below 4e-4): a few float32 ulp from the true tanh, and
# branch-free, so a loop of it vectorises (a call to libm's tanhf per value would not): as fast as NumPy's SIMD tanh,
# 9x faster than the same loop with Python's ZeroDivisionError check (error_model="numpy" drops it).
_TANH_CLAMP = np.float32(7.90531110763549805)
_TANH_TINY = np.float32(0.0004)
_ALPHA = tuple(np.float32(a) for a in (
    -2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08, 1.48572235717979e-05,
    6.37261928875436e-04, 4.89352455891786e-03,
))  # fmt: skip
_BETA = tuple(np.float32(b) for b in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                                      4.89352518554385e-03))  # fmt: skip


@numba.njit(inline="always")
def _tanh(value):  # pragma: no cover - compiled; tested through its results
    """float32 tanh: NaN stays NaN (the clamp's comparisons are false for it), +-inf gives +-1."""
    x = _TANH_CLAMP if value > _TANH_CLAMP else value
    x = -_TANH_CLAMP if x < -_TANH_CLAMP else x
    x2 = x * x
    p = _ALPHA[0]
    p = p * x2 + _ALPHA[1]
    p = p * x2 + _ALPHA[2]
    p = p * x2 + _ALPHA[3]
    p = p * x2 + _ALPHA[4]
    p = p * x2 + _ALPHA[5]
    p = p * x2 + _ALPHA[6]
    p = p * x
    q = _BETA[0]
    q = q * x2 + _BETA[1]
    q = q * x2 + _BETA[2]
    q = q * x2 + _BETA[3]
    return value if abs(value) < _TANH_TINY else p / q


@numba.njit(numba.void(_MATRIX, _MATRIX, numba.int64), boundscheck=False, nogil=True, cache=False, error_model="numpy")
def tanh_rows(x, out, n):  # pragma: no cover - compiled; tested through its results
    """out[:n] = tanh(x[:n]), the cell's tanh (tests hold it to NumPy's)."""
    for b in range(n):
        source, target = x[b], out[b]
        for j in range(source.shape[0]):
            target[j] = _tanh(source[j])


@numba.njit(
    numba.void(_MATRIX, _MATRIX, _MATRIX, numba.int64, numba.int64, numba.boolean),
    boundscheck=False,
    nogil=True,
    cache=False,
    error_model="numpy",  # x / 0 is IEEE's, not a raised ZeroDivisionError: the check would stop vectorisation
)
def cell_rows(g, c, z, lo, n, hard):  # pragma: no cover - compiled; tested through its results
    """The LSTM cell for rows 0..n-1, in place: from the pre-activations `g` = `[i, f, o, c~]` (the sigmoid gates
    pre-halved, see service/engine.py), the cell state `c` and the output `h` into the state rows `z[:, lo:lo+u]`.

    Sigmoid gates are `0.5 * tanh(x) + 0.5`, `hard` (Keras 2's hard_sigmoid) gates `clip(0.2 * x + 0.5, 0, 1)`; then
    `c = f * c + i * tanh(c~)` and `h = o * tanh(c)`. No fused multiply-add: each operation rounds once, as NumPy's
    would. One row and a batch of rows take this same code, so the engine's cell is bit for bit the same either way."""
    u = c.shape[1]
    for b in range(n):
        gates, cand, state, h = g[b, : 3 * u], g[b, 3 * u :], c[b], z[b, lo : lo + u]  # 1-D: vectorises
        if hard:
            for j in range(3 * u):
                gate = gates[j] * np.float32(0.2) + np.float32(0.5)
                gate = np.float32(0.0) if gate < np.float32(0.0) else gate  # as np.clip: NaN stays NaN
                gates[j] = np.float32(1.0) if gate > np.float32(1.0) else gate
        else:
            for j in range(3 * u):
                gates[j] = _tanh(gates[j]) * np.float32(0.5) + np.float32(0.5)
        for j in range(u):
            cand[j] = _tanh(cand[j])
            state[j] = gates[u + j] * state[j] + gates[j] * cand[j]
            h[j] = gates[2 * u + j] * _tanh(state[j])


@numba.njit(
    numba.void(_MATRIX, numba.int64, _PACKED, _MATRIX, numba.int64, _MATRIX, _MATRIX, _MATRIX, numba.boolean),
    boundscheck=False,
    nogil=True,
    cache=False,
    error_model="numpy",  # x / 0 is IEEE's, not a raised ZeroDivisionError: the check would stop vectorisation
)
def condition_rows(proj, n, recurrent, z, lo, c, g, seq, hard):  # pragma: no cover - compiled; tested through results
    """One layer over n conditioning events for the one-row state `z`, `c`, `g` (2-D views of one row): per event,
    `g = h @ R + proj[t]` (R packed with a zero bias, `proj[t]` the event's input projection with the layer's bias),
    the cell, and the new h into `seq[t]`. The whole loop in one call: no interpreter between events."""
    u = c.shape[1]
    for t in range(n):
        matmul_rows(z, lo, 1, recurrent, g)
        row, step = g[0], proj[t]
        for j in range(4 * u):
            row[j] += step[j]
        cell_rows(g, c, z, lo, 1, hard)
        h, out = z[0, lo : lo + u], seq[t]
        for j in range(u):
            out[j] = h[j]
