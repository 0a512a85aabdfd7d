"""The int8 products behind ROBOJAM_PRECISION=int8, compiled once by Numba: dynamic int8 with int32 sums.

`qmatmul_rows(z, lo, fp_cols, rows, weights, out)`: for rows 0..rows-1, `out = z[:, lo:lo+K] @ W + bias` where the
first `fp_cols` columns of the input stay float32 (layer 0's D input columns) and the rest are quantized per row
per call to int8 (symmetric, scale max|a| / 127), multiplied with weights quantized once at load per output
channel (symmetric, int8), and summed in int32, which is exact: a row's sums do not depend on how many
rows share the call or in which order they are added, so the lone path (one row) and the batched path (B rows) give
the same bits, and so does every CPU (the fallback below is the same integer arithmetic).

The integer sums use AVX-512 VNNI's `vpdpbusd` (64 unsigned x signed byte products per instruction, 4x float32 FMA's
work) through an LLVM intrinsic, in outer-product register tiles as service/batch_kernels.py's float32 product: the
weights are packed at load in panels of PANEL output columns, four consecutive K of each column side by side
(`packed_panels`), so one vpdpbusd multiplies four activations of one row (broadcast to every lane) with 16 columns'
four weights, and a tile keeps TILE_ROWS rows x TILE_VECTORS zmm of running sums in registers over all of K, with no
horizontal sums. Smaller tiles (4, 2, 1 rows) keep as many sums in flight by splitting K between several sets of
sums (`_splits`), added at the end. Measured on a Zen 4 core (2x512, one process, alternating, thread CPU time),
against the previous kernel (4 rows x 4 weight rows of dot products over K, horizontal sums): the int8 step 1.2-1.8x
faster at B=1..32. `vpdpbusd` takes unsigned activations, so they are stored plus 128 and 128 x each weight row's sum
is subtracted after (exact). A CPU without AVX-512 VNNI gets the same operation written in plain LLVM vector IR
(`VNNI` is False), lane by lane in 16-bit multiplies, in tiles of PORTABLE_ROWS rows (its sums need twice the
registers): the same integers, slower, with a warning at start. For one 1024 x 2048 product against the float32
kernel on the Zen 4 core: compiled for AVX-512 without VNNI ~1.15x faster for one row and ~2x slower for 4 or 16; for
an AVX2 target (NUMBA_CPU_NAME=haswell) ~1.15x faster for one row, ~2x slower for 4 or 16. It serves rather than
refuses, so a deployment that lands on an older CPU still starts and answers the same bits, but int8 only pays where
the CPU has AVX-512 VNNI.

The float32 epilogue (`(sum - 128 * rowsum) * (row scale * channel scale) + float32 part + bias`) runs in one loop
that treats every row the same, with only `reassoc`/`contract` of fastmath in the float32 part's dot product.
tests/test_int8.py holds the kernel to a NumPy reference of the same quantization, bit for bit.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import llvmlite.binding
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from service import batch_kernels

LANES = 64  # bytes per vector: one vpdpbusd step along K
OFFSET = 128  # activations are stored unsigned, as q + OFFSET
LEVELS = 127  # symmetric int8: -127..127
_TINY = np.float32(2.0**-100)  # a row this small quantizes as zero (127 / max|a| must stay finite)
_MAGIC = np.float32(1.5 * 2**23)  # x + _MAGIC - _MAGIC rounds a float32 |x| < 2**22 to an integer, half to even
TILE_ROWS, TILE_VECTORS = 8, 2  # batch rows x zmm vectors of 16 output columns per register tile
PORTABLE_ROWS = 2  # the portable tile's rows: its sums take two ymm each, and AVX2 has 16
WIDTH = 16  # int32 lanes per vector: output columns per vector
GROUP = 4  # K per lane per vpdpbusd: 4 bytes of one row times 4 bytes of one column
PANEL = TILE_VECTORS * WIDTH  # output columns per packed weight panel
_I32X16 = ir.VectorType(ir.IntType(32), WIDTH)
_I8X64 = ir.VectorType(ir.IntType(8), LANES)


def host_has_vnni() -> bool:
    """Whether the CPU Numba compiles for has AVX-512 VNNI (`vpdpbusd` on 512-bit vectors)."""
    features = numba.config.CPU_FEATURES or llvmlite.binding.get_host_cpu_features().flatten()
    return "+avx512vnni" in features.split(",")


VNNI = host_has_vnni()
PORTABLE_WARNING = (
    "int8 without AVX-512 VNNI on this CPU: the same results from portable code, faster than fp32 for a lone request "
    "but slower for batches (docs/api.md)."
)


def _portable_dpbusd(builder, acc, unsigned, signed):
    """acc plus the 64 u8 x s8 products, lane i taking bytes 4i..4i+3 as vpdpbusd does, in plain vector IR that
    never crosses a lane: per 16-bit half of a lane, its even and its odd byte widened in place (shifts and a mask),
    multiplied in int16 (exact: 255 x 127 < 2**15), and the four products sign-extended into the lane's int32 sum."""
    i16x32 = ir.VectorType(ir.IntType(16), 2 * WIDTH)

    def splat16(value):
        return ir.Constant(i16x32, [value] * (2 * WIDTH))

    def splat32(value):
        return ir.Constant(_I32X16, [value] * WIDTH)

    a, w = builder.bitcast(unsigned, i16x32), builder.bitcast(signed, i16x32)
    even = builder.mul(builder.and_(a, splat16(0xFF)), builder.ashr(builder.shl(w, splat16(8)), splat16(8)))
    odd = builder.mul(builder.lshr(a, splat16(8)), builder.ashr(w, splat16(8)))
    for products in (even, odd):
        pair = builder.bitcast(products, _I32X16)
        low = builder.ashr(builder.shl(pair, splat32(16)), splat32(16))
        acc = builder.add(acc, builder.add(low, builder.ashr(pair, splat32(16))))
    return acc


def _dpbusd(builder, vnni: bool, acc, unsigned, signed):
    """acc + the 64 byte products, four per lane: with `vnni` one AVX-512 VNNI instruction, else `_portable_dpbusd`."""
    if not vnni:
        return _portable_dpbusd(builder, acc, unsigned, signed)
    function_type = ir.FunctionType(_I32X16, [_I32X16, _I32X16, _I32X16])
    instruction = cgutils.get_or_insert_function(builder.module, function_type, "llvm.x86.avx512.vpdpbusd.512")
    return builder.call(instruction, [acc, unsigned, signed])


def _splits(rows: int, vnni: bool) -> int:
    """Independent sets of running sums over alternate K groups for a VNNI tile of `rows` rows, so every tile height
    keeps TILE_ROWS x TILE_VECTORS sums in flight (a lone row would otherwise wait on two chains of vpdpbusd's
    latency); they are added at the end (integers: exact). The portable tiles have no registers to spare: one set."""
    return TILE_ROWS // rows if vnni else 1


def _microkernel(rows: int, vnni: bool):
    """An intrinsic for one register tile: `sums[r, :PANEL] = x[r, :K] . panel` (int32) for r < rows.

    Arguments are addresses and strides: `x` (unsigned bytes, rows `x_stride` bytes apart), the packed panel `w`
    (`groups` = K / GROUP steps of PANEL x GROUP signed bytes), `groups` (a multiple of `_splits(rows, vnni)`), and
    `out` (int32, rows `out_stride` elements apart). Per step it loads the panel's TILE_VECTORS weight vectors once and
    broadcasts 4 bytes of each row into one vpdpbusd per vector: no horizontal sums."""
    splits = _splits(rows, vnni)

    @intrinsic
    def tile(typingctx, x, x_stride, w, groups, out, out_stride):
        def codegen(context, builder, signature, args):
            i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
            x, x_stride, w, groups, out, out_stride = (
                context.cast(builder, value, kind, types.int64)
                for value, kind in zip(args, signature.args, strict=True)
            )
            xp, wp = (builder.inttoptr(a, i8.as_pointer()) for a in (x, w))
            op = builder.inttoptr(out, i32.as_pointer())

            def at(pointer, offset):
                return builder.gep(pointer, [offset if isinstance(offset, ir.Value) else ir.Constant(i64, offset)])

            x_rows = [at(xp, builder.mul(ir.Constant(i64, r), x_stride)) for r in range(rows)]
            zero, broadcast = ir.Constant(_I32X16, None), ir.Constant(_I32X16, None)
            entry, loop = builder.basic_block, builder.append_basic_block("tile_loop")
            done = builder.append_basic_block("tile_done")
            builder.branch(loop)
            builder.position_at_end(loop)
            g = builder.phi(i64)
            sums = [[[builder.phi(_I32X16) for _ in range(TILE_VECTORS)] for _ in range(rows)] for _ in range(splits)]
            summed = []
            for s in range(splits):
                step = builder.add(g, ir.Constant(i64, s))
                weights = at(wp, builder.mul(step, ir.Constant(i64, PANEL * GROUP)))
                columns = [
                    builder.load(builder.bitcast(at(weights, c * LANES), _I32X16.as_pointer()), align=1)
                    for c in range(TILE_VECTORS)
                ]
                split = []
                for r in range(rows):
                    four = builder.load(
                        builder.bitcast(at(x_rows[r], builder.mul(step, ir.Constant(i64, GROUP))), i32.as_pointer()),
                        align=1,
                    )
                    a = builder.insert_element(ir.Constant(_I32X16, ir.Undefined), four, ir.Constant(i32, 0))
                    a = builder.shuffle_vector(a, ir.Constant(_I32X16, ir.Undefined), broadcast)
                    split.append([_dpbusd(builder, vnni, sums[s][r][c], a, columns[c]) for c in range(TILE_VECTORS)])
                summed.append(split)
            g_next = builder.add(g, ir.Constant(i64, splits))
            builder.cbranch(builder.icmp_signed("<", g_next, groups), loop, done)
            g.add_incoming(ir.Constant(i64, 0), entry)
            g.add_incoming(g_next, loop)
            for s in range(splits):
                for r in range(rows):
                    for c in range(TILE_VECTORS):
                        sums[s][r][c].add_incoming(zero, entry)
                        sums[s][r][c].add_incoming(summed[s][r][c], loop)
            builder.position_at_end(done)
            for r in range(rows):
                out_row = at(op, builder.mul(ir.Constant(i64, r), out_stride))
                for c in range(TILE_VECTORS):
                    total = summed[0][r][c]
                    for s in range(1, splits):
                        total = builder.add(total, summed[s][r][c])
                    builder.store(total, builder.bitcast(at(out_row, c * WIDTH), _I32X16.as_pointer()), align=4)
            return context.get_dummy_value()

        return types.void(x, x_stride, w, groups, out, out_stride), codegen

    return tile


def _row_pieces(vnni: bool) -> list[int]:
    """The tile heights compiled: the full tile (TILE_ROWS, or PORTABLE_ROWS), then halves down to one row."""
    pieces = [TILE_ROWS if vnni else PORTABLE_ROWS]
    while pieces[-1] > 1:
        pieces.append(pieces[-1] // 2)
    return pieces


def _driver_source(vnni: bool) -> str:
    """The source of `integer_sums`: per weight panel (it stays in cache), whole row tiles, then the rows left in
    smaller tiles, each through the tile intrinsic of its height (`tile{rows}`, by an if-chain: intrinsics cannot be
    indexed)."""
    pieces = _row_pieces(vnni)
    dispatch = []
    for r in pieces:
        dispatch += [
            f"            {'if' if r == pieces[0] else 'elif'} r == {r}:",
            f"                tile{r}(x, q_stride, w, groups, dst, sums_stride)",
        ]
    lines = [  # addresses by arithmetic, no slices: each slice would compile helpers at import
        "def integer_sums(q, rows, packed, sums):",
        "    panels, groups, panel_bytes = packed.shape",
        "    q_stride, sums_stride = q.shape[1], sums.shape[1]",
        "    q_at, w_at, sums_at = q.ctypes.data, packed.ctypes.data, sums.ctypes.data",
        "    for p in range(panels):",
        "        w = w_at + p * groups * panel_bytes",
        "        b0 = 0",
        "        while b0 < rows:",
        "            x, dst = q_at + b0 * q_stride, sums_at + 4 * (b0 * sums_stride + p * PANEL)",
        "            r = " + " ".join(f"{r} if rows - b0 >= {r} else" for r in pieces[:-1]) + " 1",
        *dispatch,
        "            b0 += r",
    ]
    return "\n".join(lines) + "\n"


_BYTES = numba.types.Array(numba.uint8, 2, "C")
_SUMS = numba.types.Array(numba.int32, 2, "C")
_MATRIX = numba.types.Array(numba.float32, 2, "C")
_PACKED = numba.types.Array(numba.int8, 3, "C", readonly=True)
_WEIGHTS = numba.types.Array(numba.float32, 2, "C", readonly=True)
_VECTOR = numba.types.Array(numba.float32, 1, "C", readonly=True)
_CORRECTIONS = numba.types.Array(numba.int32, 1, "C", readonly=True)
_SCALES = numba.types.Array(numba.float32, 1, "C")


def compile_integer_sums(vnni: bool):
    """`integer_sums(q, rows, packed, sums)`: sums[b, n] = q[b] . W[n] in int32 for rows 0..rows-1 (q unsigned
    bytes padded to a multiple of LANES, W signed as `packed_panels` lays it out; `sums` PANEL x panels wide)."""
    namespace = {"PANEL": PANEL, **{f"tile{r}": _microkernel(r, vnni) for r in _row_pieces(vnni)}}
    exec(compile(_driver_source(vnni), "<integer_sums>", "exec"), namespace)
    return numba.njit(numba.void(_BYTES, numba.int64, _PACKED, _SUMS), boundscheck=False, nogil=True, cache=False)(
        namespace["integer_sums"]
    )


@numba.njit(
    numba.void(_MATRIX, numba.int64, numba.int64, numba.int64, _BYTES, _SCALES),
    boundscheck=False,
    nogil=True,
    cache=False,
)
def quantize_rows(z, lo, k, rows, q, scales):  # pragma: no cover - compiled; tested through its results
    """Rows 0..rows-1 of `z[:, lo:lo+k]` to unsigned bytes `q[b, :k]` = round(a / scale) + OFFSET, scale =
    max|a| / LEVELS per row (into `scales`; 0 for a row of zeros or all below _TINY); the padding past k is
    OFFSET (zero)."""
    for b in range(rows):
        a = z[b, lo : lo + k]
        top = np.float32(0.0)
        for j in range(k):
            top = max(top, abs(a[j]))
        if not top >= _TINY:  # also NaN: never divide by it
            top = np.float32(0.0)
        scales[b] = top / np.float32(LEVELS)
        inverse = np.float32(LEVELS) / top if top > np.float32(0.0) else np.float32(0.0)
        row = q[b]
        for j in range(k):  # round half to even by the float32 magic number (vectorises; |a * inverse| <= 127)
            rounded = (a[j] * inverse + _MAGIC) - _MAGIC
            row[j] = np.uint8(np.int32(rounded) + OFFSET)
        for j in range(k, row.shape[0]):
            row[j] = np.uint8(OFFSET)


@numba.njit(
    numba.void(_MATRIX, numba.int64, numba.int64, numba.int64, _SUMS, _SCALES, _WEIGHTS, _WEIGHTS, _CORRECTIONS,
               _VECTOR, _VECTOR, _MATRIX),
    fastmath={"reassoc", "contract"},
    boundscheck=False,
    nogil=True,
    cache=False,
)  # fmt: skip
def epilogue(z, lo, fp_cols, rows, sums, scales, wfp, by_input, corrections, wscales, bias, out):  # pragma: no cover
    """out[b, n] = z[b, lo:lo+fp_cols] . wfp[n] + (sums - corrections) * scales[b] * wscales[n] + bias[n], the same
    code for every row (so one row alone and in a batch get the same bits). The float32 part is a few columns
    (layer 0's input), added one input at a time across all outputs (`by_input`, (fp_cols, N)), so the loops over
    N vectorise. Every layer has integer columns (the head, all float32, is batch_kernels' product)."""
    n_out = out.shape[1]
    for b in range(rows):
        x, row, o = z[b, lo : lo + fp_cols], sums[b], out[b]
        row_scale = scales[b]
        for n in range(n_out):
            o[n] = np.float32(0.0)
        for j in range(fp_cols):
            a, w = x[j], by_input[j]
            for n in range(n_out):
                o[n] += a * w[n]
        for n in range(n_out):
            t = o[n] + np.float32(row[n] - corrections[n]) * (row_scale * wscales[n])
            o[n] = t + bias[n]


@dataclass(frozen=True)
class Layer:
    """One product's weights as the int8 kernels read them: `fp` (N, fp_cols) float32 for the columns kept in
    float32 (and as `fp_by_input`, (fp_cols, N)), `quantized` (N, K padded to LANES) int8 with per-output-channel
    `scales` and `corrections` (OFFSET x each row's sum), the same int8 weights as the tiles read them (`packed`,
    `packed_panels`), and the bias."""

    fp: np.ndarray
    fp_by_input: np.ndarray
    columns: int  # K: the quantized input columns (before padding)
    quantized: np.ndarray
    packed: np.ndarray
    scales: np.ndarray
    corrections: np.ndarray
    bias: np.ndarray

    @property
    def fp_cols(self) -> int:
        return self.fp.shape[1]


def _frozen(array: np.ndarray, dtype) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=dtype)
    array.setflags(write=False)
    return array


def packed_panels(quantized: np.ndarray) -> np.ndarray:
    """(N, K) int8 weights (K a multiple of GROUP) as the tiles read them: panels of PANEL output columns, each
    K / GROUP steps of PANEL columns x GROUP consecutive K, `(panels, K / GROUP, PANEL * GROUP)`, so one 64-byte load
    is 16 columns' next four weights; the last panel zero-padded. C-contiguous, read-only."""
    n, k = quantized.shape
    panels = -(-n // PANEL)
    padded = np.zeros((panels * PANEL, k), dtype=np.int8)
    padded[:n] = quantized
    layout = padded.reshape(panels, PANEL, k // GROUP, GROUP).transpose(0, 2, 1, 3)
    return _frozen(layout.reshape(panels, k // GROUP, PANEL * GROUP), np.int8)


def quantize_layer(weights: np.ndarray, bias: np.ndarray, fp_cols: int) -> Layer:
    """A (K, N) float32 weight matrix, its first `fp_cols` input rows kept in float32 and the rest quantized per
    output channel (symmetric int8, scale max|w| / LEVELS)."""
    fp, rest = weights[:fp_cols].T, weights[fp_cols:].T.astype(np.float32)
    k = rest.shape[1]
    top = np.abs(rest).max(axis=1) if k else np.zeros(rest.shape[0], dtype=np.float32)
    scales = (top / np.float32(LEVELS)).astype(np.float32)
    safe = np.where(top > 0, np.float32(LEVELS) / np.where(top > 0, top, 1), 0).astype(np.float32)
    padded = np.zeros((rest.shape[0], -(-k // LANES) * LANES), dtype=np.int8)
    padded[:, :k] = np.clip(np.rint(rest * safe[:, None]), -LEVELS, LEVELS).astype(np.int8)
    corrections = OFFSET * padded.astype(np.int32).sum(axis=1)
    return Layer(
        _frozen(fp, np.float32), _frozen(fp.T, np.float32), k, _frozen(padded, np.int8), packed_panels(padded),
        _frozen(scales, np.float32), _frozen(corrections, np.int32), _frozen(bias, np.float32),
    )  # fmt: skip


class Kernels:
    """The compiled int8 product for one instruction set (`vnni`: AVX-512 VNNI, else the portable IR)."""

    def __init__(self, vnni: bool = VNNI):
        self.vnni = vnni
        self.integer_sums = compile_integer_sums(vnni)
        self._product = compile_product(self.integer_sums)

    def qmatmul_rows(self, z: np.ndarray, lo: int, rows: int, layer: Layer, out: np.ndarray) -> None:
        """out[:rows] = z[:rows, lo:lo+K] @ W + bias, the columns past `layer.fp_cols` in int8 (module docstring)."""
        self._product(z, lo, layer.fp_cols, layer.columns, rows, layer.fp, layer.fp_by_input, layer.packed,
                      layer.scales, layer.corrections, layer.bias, out)  # fmt: skip


@functools.cache
def kernels(vnni: bool = VNNI) -> Kernels:
    """The compiled kernels for `vnni`, once per process (compiling takes seconds)."""
    return Kernels(vnni)


def compile_product(integer_sums):
    """One compiled call per product (quantize, integer sums, epilogue): a Python call costs microseconds, and the
    lone path makes three products per step."""

    @numba.njit(
        numba.void(_MATRIX, numba.int64, numba.int64, numba.int64, numba.int64, _WEIGHTS, _WEIGHTS, _PACKED, _VECTOR,
                   _CORRECTIONS, _VECTOR, _MATRIX),
        boundscheck=False,
        nogil=True,
        cache=False,
    )  # fmt: skip
    def product(z, lo, fp_cols, k, rows, wfp, by_input, packed, wscales, corrections, bias, out):  # pragma: no cover
        panels, groups = packed.shape[0], packed.shape[1]
        n_out, k_pad = panels * PANEL, groups * GROUP
        q = np.empty((rows, k_pad), dtype=np.uint8)
        scales = np.zeros(rows, dtype=np.float32)
        sums = np.empty((rows, n_out if k_pad else 0), dtype=np.int32)
        if k_pad:
            quantize_rows(z, lo + fp_cols, k, rows, q, scales)
            integer_sums(q, rows, packed, sums)
        epilogue(z, lo, fp_cols, rows, sums, scales, wfp, by_input, corrections, wscales, bias, out)

    return product


class Products:
    """An engine's products in int8 (ROBOJAM_PRECISION=int8), from its float32 weights in the engine's layout:
    per layer the stacked `[kernel; recurrent_kernel]` (K, 4u) with its bias, then the MDN head. Layer 0's D input
    columns and the head stay float32 (they are a sliver of the work and carry the input's and the output's full
    range; the head is service/batch_kernels.py's float32 product, the fp32 engine's); every other column is int8.
    Read-only after construction; safe to share between threads."""

    def __init__(self, stacked, biases, head, head_bias, dimension: int, compiled: Kernels | None = None):
        units = head.shape[0]
        self.kernels = compiled or kernels()
        if not self.kernels.vnni:
            logging.getLogger(__name__).warning(PORTABLE_WARNING)
        self.layers = tuple(
            quantize_layer(weights, bias, dimension if i == 0 else 0)
            for i, (weights, bias) in enumerate(zip(stacked, biases, strict=True))
        )
        self.starts = tuple(0 if i == 0 else dimension + (i - 1) * units for i in range(len(stacked)))
        self.head_packed = batch_kernels.packed(head, head_bias)  # float32, the fp32 engine's product
        self.head_start = dimension + (len(stacked) - 1) * units

    def layer(self, index: int, z: np.ndarray, rows: int, g: np.ndarray) -> None:
        """Layer `index`'s pre-activations for rows 0..rows-1 of the state rows `z` into `g`."""
        self.kernels.qmatmul_rows(z, self.starts[index], rows, self.layers[index], g)

    def head(self, z: np.ndarray, rows: int, out: np.ndarray) -> None:
        """The raw MDN head for rows 0..rows-1 into `out`: float32, service/batch_kernels.py's register tiles (a row's
        sums do not depend on the rows beside it there either)."""
        batch_kernels.matmul_rows(z, self.head_start, rows, self.head_packed, out)
