"""The int8 products behind ROBOJAM_PRECISION=int8, compiled once by Numba: dynamic int8 with int32 sums.

`qmatmul_rows(z, lo, fp_cols, rows, weights, out)`: for rows 0..rows-1, `out = z[:, lo:lo+K] @ W + bias` where the
first `fp_cols` columns of the input stay float32 (layer 0's D input columns; the whole MDN head) and the rest are
quantized per row per call to int8 (symmetric, scale max|a| / 127), multiplied with weights quantized once at load
per output channel (symmetric, int8), and summed in int32, which is exact: a row's sums do not depend on how many
rows share the call or in which order they are added, so the lone path (one row) and the batched path (B rows) give
the same bits, and so does every CPU (the fallback below is the same integer arithmetic).

The integer sums use AVX-512 VNNI's `vpdpbusd` (64 unsigned x signed byte products per instruction, 4x float32 FMA's
work) through an LLVM intrinsic, four rows x four weight rows at a time (16 running sums in registers, as
service/batch_kernels.py does for float32). `vpdpbusd` takes unsigned activations, so they are stored plus 128 and
128 x each weight row's sum is subtracted after (exact). A CPU without AVX-512 VNNI gets the same operation written
in plain LLVM vector IR (`VNNI` is False): the same integers, slower, with a warning at start. One 1024 x 2048
product against the float32 kernel, measured on the AVX-512 machine: compiled for AVX-512 without VNNI ~1.5x faster
for one row and ~1.5x slower for 16; for an AVX2 target (NUMBA_CPU_NAME=haswell) about even for one row and ~1.6x
slower for 16. It serves rather than refuses, so a deployment that lands on an older CPU still starts and answers
the same bits, but int8 only pays where the CPU has AVX-512 VNNI.

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
from numba.extending import intrinsic, models, register_model

LANES = 64  # bytes per vector: one vpdpbusd step along K
ROWS, COLUMNS = 4, 4  # batch rows x weight rows per register tile
TAIL_COLUMNS = 8  # weight rows per step for a row outside the tiles (the lone row): more loads in flight
OFFSET = 128  # activations are stored unsigned, as q + OFFSET
LEVELS = 127  # symmetric int8: -127..127
_TINY = np.float32(2.0**-100)  # a row this small quantizes as zero (127 / max|a| must stay finite)
_MAGIC = np.float32(1.5 * 2**23)  # x + _MAGIC - _MAGIC rounds a float32 |x| < 2**22 to an integer, half to even
_I32X16 = ir.VectorType(ir.IntType(32), 16)
_I8X64 = ir.VectorType(ir.IntType(8), 64)


def host_has_vnni() -> bool:
    """Whether the CPU Numba compiles for has AVX-512 VNNI (`vpdpbusd` on 512-bit vectors)."""
    features = numba.config.CPU_FEATURES or llvmlite.binding.get_host_cpu_features().flatten()
    return "+avx512vnni" in features.split(",")


VNNI = host_has_vnni()
PORTABLE_WARNING = (
    "int8 without AVX-512 VNNI on this CPU: the same results from portable code, faster than fp32 for a lone request "
    "but slower for batches (docs/api.md)."
)


class _Vector(types.Type):
    """Sixteen int32 lanes (64 bytes) held in a register: the type of the running sums and the loaded vectors."""

    def __init__(self):
        super().__init__(name="int32x16")


vector = _Vector()


@register_model(_Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _I32X16)


@intrinsic
def vzero(typingctx):
    """A vector of zeros."""

    def codegen(context, builder, signature, args):
        return ir.Constant(_I32X16, None)

    return vector(), codegen


@intrinsic
def vload(typingctx, array, offset):
    """The 64 bytes of a 1-D C-contiguous byte array from `offset` (unaligned)."""

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        pointer = builder.bitcast(builder.gep(data, [args[1]]), _I32X16.as_pointer())
        return builder.load(pointer, align=1)

    return vector(array, offset), codegen


@intrinsic
def vsum(typingctx, v):
    """The sum of the sixteen lanes, as int32."""

    def codegen(context, builder, signature, args):
        function_type = ir.FunctionType(ir.IntType(32), [_I32X16])
        reduce = cgutils.get_or_insert_function(builder.module, function_type, "llvm.vector.reduce.add.v16i32")
        return builder.call(reduce, [args[0]])

    return types.int32(vector), codegen


def _portable_dpbusd(builder, acc, unsigned, signed):
    """acc plus the 64 u8 x s8 products, in plain vector IR: each product fits in int16 (255 x 127 < 2**15), so they
    are multiplied as 16-bit lanes, widened and added in four contiguous quarters. The lanes hold other partial sums
    than vpdpbusd's, but the same total, which is all `vsum` reads."""
    i16x64, i32x64 = ir.VectorType(ir.IntType(16), 64), ir.VectorType(ir.IntType(32), 64)
    a16 = builder.zext(builder.bitcast(unsigned, _I8X64), i16x64)
    w16 = builder.sext(builder.bitcast(signed, _I8X64), i16x64)
    products = builder.sext(builder.mul(a16, w16), i32x64)
    for quarter in range(4):
        picks = ir.Constant(ir.VectorType(ir.IntType(32), 16), list(range(16 * quarter, 16 * quarter + 16)))
        acc = builder.add(acc, builder.shuffle_vector(products, products, picks))
    return acc


def make_dpbusd(vnni: bool):
    """`dpbusd(acc, unsigned_bytes, signed_bytes)`: acc + the 64 byte products, four per lane; with `vnni`, one
    AVX-512 VNNI instruction, else `_portable_dpbusd` (other lanes, the same total)."""

    @intrinsic
    def dpbusd(typingctx, acc, unsigned, signed):
        def codegen(context, builder, signature, args):
            if not vnni:
                return _portable_dpbusd(builder, *args)
            function_type = ir.FunctionType(_I32X16, [_I32X16, _I32X16, _I32X16])
            instruction = cgutils.get_or_insert_function(builder.module, function_type, "llvm.x86.avx512.vpdpbusd.512")
            return builder.call(instruction, list(args))

        return vector(vector, vector, vector), codegen

    return dpbusd


def _tile_source() -> str:
    """The unrolled source of `integer_sums` (running sums must be plain locals to stay in registers)."""
    rows, cols, tail = range(ROWS), range(COLUMNS), range(TAIL_COLUMNS)
    lines = [
        "def integer_sums(q, rows, wq, sums):",
        "    n_out, k_pad = wq.shape",
        f"    full, wide = rows - rows % {ROWS}, n_out - n_out % {COLUMNS}",
        f"    for n0 in range(0, wide, {COLUMNS}):",
        *(f"        w{c} = wq[n0 + {c}]" for c in cols),
        f"        for b0 in range(0, full, {ROWS}):",
        *(f"            x{r} = q[b0 + {r}]" for r in rows),
        "            " + " = ".join(f"s{r}_{c}" for r in rows for c in cols) + " = vzero()",
        f"            for k in range(0, k_pad, {LANES}):",
        *(f"                a{r} = vload(x{r}, k)" for r in rows),
        *(f"                v{c} = vload(w{c}, k)" for c in cols),
        *(f"                s{r}_{c} = dpbusd(s{r}_{c}, a{r}, v{c})" for r in rows for c in cols),
        *(f"            sums[b0 + {r}, n0 + {c}] = vsum(s{r}_{c})" for r in rows for c in cols),
        f"    narrow = n_out - n_out % {TAIL_COLUMNS}",
        "    for b in range(full, rows):  # the last rows, one at a time",
        "        x = q[b]",
        f"        for n0 in range(0, narrow, {TAIL_COLUMNS}):",
        "            " + " = ".join(f"t{c}" for c in tail) + " = vzero()",
        f"            for k in range(0, k_pad, {LANES}):",
        "                a = vload(x, k)",
        *(f"                t{c} = dpbusd(t{c}, a, vload(wq[n0 + {c}], k))" for c in tail),
        *(f"            sums[b, n0 + {c}] = vsum(t{c})" for c in tail),
        "        for n in range(narrow, wide):",
        "            w, t = wq[n], vzero()",
        f"            for k in range(0, k_pad, {LANES}):",
        "                t = dpbusd(t, vload(x, k), vload(w, k))",
        "            sums[b, n] = vsum(t)",
        "    for n in range(wide, n_out):  # the last weight rows, one at a time",
        "        w = wq[n]",
        "        for b in range(rows):",
        "            x, t = q[b], vzero()",
        f"            for k in range(0, k_pad, {LANES}):",
        "                t = dpbusd(t, vload(x, k), vload(w, k))",
        "            sums[b, n] = vsum(t)",
    ]
    return "\n".join(lines) + "\n"


_BYTES = numba.types.Array(numba.uint8, 2, "C")
_SUMS = numba.types.Array(numba.int32, 2, "C")
_MATRIX = numba.types.Array(numba.float32, 2, "C")
_WEIGHTS_Q = numba.types.Array(numba.int8, 2, "C", readonly=True)
_WEIGHTS = numba.types.Array(numba.float32, 2, "C", readonly=True)
_VECTOR = numba.types.Array(numba.float32, 1, "C", readonly=True)
_CORRECTIONS = numba.types.Array(numba.int32, 1, "C", readonly=True)
_SCALES = numba.types.Array(numba.float32, 1, "C")


def compile_integer_sums(vnni: bool):
    """`integer_sums(q, rows, wq, sums)`: sums[b, n] = q[b] . wq[n] in int32 for rows 0..rows-1 (q unsigned bytes,
    wq signed, both padded to a multiple of LANES)."""
    namespace = {"vzero": vzero, "vload": vload, "vsum": vsum, "dpbusd": make_dpbusd(vnni)}
    exec(compile(_tile_source(), "<integer_sums>", "exec"), namespace)
    return numba.njit(numba.void(_BYTES, numba.int64, _WEIGHTS_Q, _SUMS), boundscheck=False, nogil=True, cache=False)(
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
    numba.void(_MATRIX, numba.int64, numba.int64, numba.int64, _SUMS, _SCALES, _WEIGHTS, _CORRECTIONS, _VECTOR,
               _VECTOR, _MATRIX),
    fastmath={"reassoc", "contract"},
    boundscheck=False,
    nogil=True,
    cache=False,
)  # fmt: skip
def epilogue(z, lo, fp_cols, rows, sums, scales, wfp, corrections, wscales, bias, out):  # pragma: no cover
    """out[b, n] = (sums - corrections) * scales[b] * wscales[n] + z[b, lo:lo+fp_cols] . wfp[n] + bias[n], the same
    code for every row (so one row alone and in a batch get the same bits)."""
    n_out = out.shape[1]
    for b in range(rows):
        x = z[b, lo : lo + fp_cols]
        row_scale = scales[b]
        for n in range(n_out):
            w = wfp[n]
            t = np.float32(0.0)
            for j in range(fp_cols):
                t += x[j] * w[j]
            if sums.shape[1]:
                t += np.float32(sums[b, n] - corrections[n]) * (row_scale * wscales[n])
            out[b, n] = t + bias[n]


@dataclass(frozen=True)
class Layer:
    """One product's weights as the int8 kernels read them: `fp` (N, fp_cols) float32 for the columns kept in
    float32, `quantized` (N, K padded to LANES) int8 with per-output-channel `scales` and `corrections` (OFFSET x each
    row's sum), and the bias."""

    fp: np.ndarray
    columns: int  # K: the quantized input columns (before padding)
    quantized: np.ndarray
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
        _frozen(fp, np.float32), k, _frozen(padded, np.int8), _frozen(scales, np.float32),
        _frozen(corrections, np.int32), _frozen(bias, np.float32),
    )  # fmt: skip


class Kernels:
    """The compiled int8 product for one instruction set (`vnni`: AVX-512 VNNI, else the portable IR)."""

    def __init__(self, vnni: bool = VNNI):
        self.vnni = vnni
        self.integer_sums = compile_integer_sums(vnni)
        self._product = compile_product(self.integer_sums)

    def qmatmul_rows(self, z: np.ndarray, lo: int, rows: int, layer: Layer, out: np.ndarray) -> None:
        """out[:rows] = z[:rows, lo:lo+K] @ W + bias, the columns past `layer.fp_cols` in int8 (module docstring)."""
        self._product(z, lo, layer.fp_cols, layer.columns, rows, layer.fp, layer.quantized, layer.scales,
                      layer.corrections, layer.bias, out)  # fmt: skip


@functools.cache
def kernels(vnni: bool = VNNI) -> Kernels:
    """The compiled kernels for `vnni`, once per process (compiling takes seconds)."""
    return Kernels(vnni)


def compile_product(integer_sums):
    """One compiled call per product (quantize, integer sums, epilogue): a Python call costs microseconds, and the
    lone path makes three products per step."""

    @numba.njit(
        numba.void(_MATRIX, numba.int64, numba.int64, numba.int64, numba.int64, _WEIGHTS, _WEIGHTS_Q, _VECTOR,
                   _CORRECTIONS, _VECTOR, _MATRIX),
        boundscheck=False,
        nogil=True,
        cache=False,
    )  # fmt: skip
    def product(z, lo, fp_cols, k, rows, wfp, wq, wscales, corrections, bias, out):  # pragma: no cover - compiled
        n_out, k_pad = wq.shape
        q = np.empty((rows, k_pad), dtype=np.uint8)
        scales = np.zeros(rows, dtype=np.float32)
        sums = np.empty((rows, n_out if k_pad else 0), dtype=np.int32)
        if k_pad:
            quantize_rows(z, lo + fp_cols, k, rows, q, scales)
            integer_sums(q, rows, wq, sums)
        epilogue(z, lo, fp_cols, rows, sums, scales, wfp, corrections, wscales, bias, out)

    return product


class Products:
    """An engine's products in int8 (ROBOJAM_PRECISION=int8), from its float32 weights in the engine's layout:
    per layer the stacked `[kernel; recurrent_kernel]` (K, 4u) with its bias, then the MDN head. Layer 0's D input
    columns and the head stay float32 (they are a sliver of the work and carry the input's and the output's full
    range); every other column is int8. Read-only after construction; safe to share between threads."""

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
        self.head_layer = quantize_layer(head, head_bias, units)  # fp_cols = all: float32
        self.head_start = dimension + (len(stacked) - 1) * units

    def layer(self, index: int, z: np.ndarray, rows: int, g: np.ndarray) -> None:
        """Layer `index`'s pre-activations for rows 0..rows-1 of the state rows `z` into `g`."""
        self.kernels.qmatmul_rows(z, self.starts[index], rows, self.layers[index], g)

    def head(self, z: np.ndarray, rows: int, out: np.ndarray) -> None:
        """The raw MDN head for rows 0..rows-1 into `out` (float32)."""
        self.kernels.qmatmul_rows(z, self.head_start, rows, self.head_layer, out)
