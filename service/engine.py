"""RoboJam inference on NumPy arrays and compiled kernels: the LSTM stack, the MDN head and RoboJam's sampling
(model/ARTIFACT.md), for one request or for a batch of them.

Why it is fast without a framework:
- Weights are rearranged once at load: each layer's `[kernel; recurrent_kernel]` is stacked so a generation step is
  one product per layer (`[x, h] @ W`), gates are reordered to `i, f, o, c` so the three sigmoids are one contiguous
  slice, and the sigmoid columns are pre-halved so `sigmoid(x) = 0.5 * tanh(x / 2) + 0.5` needs one `tanh` over all
  four gates (halving by a power of two is exact in floating point). An artifact whose gates use Keras 2's
  hard_sigmoid keeps them unscaled and the cell clips them instead (ARTIFACT.md). Then every product is packed
  once for the compiled kernels (service/batch_kernels.py: register tiles at the FMA peak, no BLAS call at all).
- Conditioning runs layer by layer: each layer's input projection for all conditioning events is one
  matrix-matrix product (per CHUNK events, to bound memory on huge inputs); the recurrent steps of a layer run in one
  compiled call (`condition_rows`), so no interpreter runs between events.
- State lives in a `BatchState`, allocated once: per row the LSTM state laid out as `[x, h_0, ..., h_{L-1}]` (so
  each layer's `[input, h]` is a contiguous slice) and per slot a request's input, draws, touches and progress.
  Every step writes into it; float32 throughout.

One request and a batch share this code. `continue_performance` runs a one-row `BatchState` with `run_alone`, which
is also what the batching loop (service/batcher.py) runs for a request that is alone: the same kernel calls with the
same shapes, so the two replies are equal bit for bit by construction, on every CPU and under any BLAS (none is
called). A generation step of one row is the batched step's kernels on one row: 6 compiled calls and the compiled
draw (the Sampler's arithmetic, bit for bit), instead of ~30 small NumPy calls (measured: a whole request 0.6x the
time of the NumPy/OpenBLAS row path it replaces, both sizes). Rows that share an iteration take one `step_rows`
together: one product per layer for all rows, which sums in another order than one row's product (float32
rounding, not bit for bit); the cell and the draw are the same code for one row and for many (bit for bit).

With `precision="int8"` (ROBOJAM_PRECISION) every product of both paths is service/int8_kernels.py's (the cell and
the draw stay these kernels): the lone path then feeds conditioning events one step at a time, as `step_rows` does,
and since int8 sums are exact integers a request's reply is the same bits alone or batched.

The `Engine` is read-only after `load` and safe to share between threads: every call owns its state and uses the
caller's `numpy.random.Generator`. A `BatchState` belongs to one thread at a time. Loading the first engine in a
process imports (compiles) the kernels: seconds, once; the app does it in gunicorn's preloading master.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from robojam_format.artifact import Artifact
from robojam_format.performance import DIMENSION
from service.settings import PRECISIONS
from service.weights import configured_weights, load_weights

MAX_STEPS = 1000  # RoboJam's cap on generated touches per continuation
MIN_DT = 0.001  # smallest generated time step, seconds
# The sampling defaults, chosen by the continuation-quality sweep (model/MODEL_CARD.md, benchmarks/quality_sweep.py);
# RoboJam's were 1.5 / 0.01.
DEFAULT_TEMPERATURE = 1.0
DEFAULT_SIGMA_TEMPERATURE = 0.1
# Conditioning events per input-projection product: bounds per-call memory, and is the one chunk both the engine and
# the batcher's lone-request path use, so their products are the same calls and their replies equal bit for bit.
# 128 holds the typical ~100-event request in one go; a newcomer waits at most one chunk to join a lone request.
CHUNK = 128
F32 = np.float32


def _kernels() -> ModuleType:
    """The compiled kernels (service/batch_kernels.py), imported on first use: they import this module's constants,
    and Numba compiles them at their import (seconds, once per process)."""
    from service import batch_kernels

    return batch_kernels


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=F32)
    array.setflags(write=False)
    return array


def _check_number(name: str, value: object, *, allow_zero: bool) -> None:
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")


# What the stored i, f, o gate columns are multiplied by, per recurrent activation (see _gates_into).
GATE_SCALE = {"sigmoid": 0.5, "hard_sigmoid": 1.0}


def _gates_into(keras: np.ndarray, out: np.ndarray, units: int, gate_scale: float = 0.5) -> None:
    """Copy Keras gate blocks `i, f, c, o` (last axis) into `out` as `i, f, o, c`, the gates times `gate_scale`.

    The order puts the three gates in one slice. For sigmoid they are halved, which lets the cell use
    sigmoid(x) = 0.5 * tanh(x / 2) + 0.5 with a single tanh over all gates (exact: a power-of-two scale);
    hard_sigmoid keeps them as they are (1.0).
    """
    for src, dst, factor in ((0, 0, gate_scale), (1, 1, gate_scale), (3, 2, gate_scale), (2, 3, 1.0)):
        block = keras[..., src * units : (src + 1) * units]
        np.multiply(block, F32(factor), out=out[..., dst * units : (dst + 1) * units])


@dataclass(frozen=True, eq=False)
class Request:
    """One continuation, checked and ready to run: its input in the network's scaled space and all its randomness,
    drawn up front (`Engine.prepare`), so a seed gives the same reply alone or batched."""

    scaled: np.ndarray  # (n, D) float32 conditioning events
    choices: np.ndarray  # (MAX_STEPS,) float64 uniforms: each step's mixture choice
    noise: np.ndarray  # (MAX_STEPS, D) float32 normals, already times sqrt(sigma_temperature)
    seconds: float
    temperature: float


class _RowViews:
    """One row of a BatchState as the row path reads it: one-row 2-D views (what the compiled kernels take), made
    once per row, so a step creates none."""

    def __init__(self, state: BatchState, row: int, dimension: int):
        self.row = np.array([row], dtype=np.int64)  # the rows the compiled draw takes
        self.z = state.z[row : row + 1]
        self.x = state.z[row, :dimension]
        self.c = [state.c[layer, row : row + 1] for layer in range(len(state.h_starts))]
        self.g = state.g[row : row + 1]
        self.out = state.out[row : row + 1]


class BatchState:
    """The state of up to `capacity` continuations, allocated once.

    Per row (rows 0..active-1, in use; a row moves when the request in it leaves): the LSTM state `z[row]` =
    `[x, h_0, ..., h_{L-1}]` and `c[:, row]`, gate scratch `g` and the raw head output `out[row]`. Per slot
    (a request keeps its slot until it leaves; `slots[row]` names it): its scaled input (`scaled`, `length` events,
    `fed` of them fed so far), its draws (`choices`, `noise`), its touches (`generated`, `steps` of them, their dt
    summing to `total`), its `seconds` and `temperature`. Conditioning scratch (`chunk` events) serves one row at a
    time.
    """

    def __init__(self, engine: Engine, capacity: int, *, chunk: int = CHUNK, length: int = 0):
        u, d, layers, slots = engine.units, engine.dimension, engine.layers, capacity
        self.capacity, self.active = capacity, 0
        self.z = np.zeros((capacity, d + layers * u), dtype=F32)
        self.c = np.zeros((layers, capacity, u), dtype=F32)
        self.g = np.empty((capacity, 4 * u), dtype=F32)
        self.out = np.empty((capacity, engine.output_size), dtype=F32)
        # Where layer i's [input, h] and h start in a row of z.
        self.input_starts = [0] + [d + (i - 1) * u for i in range(1, layers)]
        self.h_starts = [d + i * u for i in range(layers)]
        self.proj = np.empty((max(1, chunk), 4 * u), dtype=F32)
        self.seq = (np.empty((max(1, chunk), u), dtype=F32), np.empty((max(1, chunk), u), dtype=F32))
        self.slots = np.zeros(capacity, dtype=np.int64)
        self._free = list(range(slots - 1, -1, -1))
        self.scaled = np.zeros((slots, length, d), dtype=F32)  # grown as needed
        self.length, self.fed = np.zeros(slots, dtype=np.int64), np.zeros(slots, dtype=np.int64)
        self.choices = np.zeros((slots, MAX_STEPS))
        self.noise = np.zeros((slots, MAX_STEPS, d), dtype=F32)
        self.generated = np.zeros((slots, MAX_STEPS, d), dtype=F32)
        self.steps = np.zeros(slots, dtype=np.int64)
        self.total, self.seconds = np.zeros(slots), np.zeros(slots)
        self.temperature, self.inv_temperature = np.zeros(slots), np.zeros(slots)
        self.finished = np.zeros(capacity, dtype=bool)  # rows marked by the batched draw
        self.sampling = np.zeros(capacity, dtype=np.int64)  # the rows that draw in this iteration
        self._dimension = d
        self._views: list[_RowViews | None] = [None] * capacity

    def add(self, request: Request) -> int:
        """Start `request` in the next row, from zero state; returns its slot."""
        row, slot = self.active, self._free.pop()
        self.z[row] = 0.0
        self.c[:, row] = 0.0
        self.slots[row] = slot
        rows = len(request.scaled)
        if rows > self.scaled.shape[1]:
            grown = np.zeros((self.capacity, rows, self.scaled.shape[2]), dtype=F32)
            grown[:, : self.scaled.shape[1]] = self.scaled
            self.scaled = grown
        self.scaled[slot, :rows] = request.scaled
        self.length[slot], self.fed[slot] = rows, 0
        self.choices[slot], self.noise[slot] = request.choices, request.noise
        self.steps[slot], self.total[slot], self.seconds[slot] = 0, 0.0, request.seconds
        self.temperature[slot] = request.temperature
        self.inv_temperature[slot] = 1.0 / request.temperature  # inf for a subnormal temperature: argmax
        self.active += 1
        return slot

    def remove(self, row: int) -> None:
        """The request in `row` leaves: its slot is freed and the last row's state moves into `row`."""
        last = self.active - 1
        self._free.append(int(self.slots[row]))
        if row != last:
            self.z[row] = self.z[last]
            self.c[:, row] = self.c[:, last]
            self.slots[row] = self.slots[last]
        self.active -= 1

    def slot(self, row: int) -> int:
        return int(self.slots[row])

    def row(self, slot: int) -> int:
        """The row the request in `slot` occupies now."""
        return int(np.flatnonzero(self.slots[: self.active] == slot)[0])

    def result(self, slot: int) -> np.ndarray:
        """The touches generated in `slot` so far: (m, D) float32 `[x, y, dt]`, a copy."""
        return self.generated[slot, : self.steps[slot]].copy()

    def _row(self, row: int) -> _RowViews:
        views = self._views[row]
        if views is None:
            views = self._views[row] = _RowViews(self, row, self._dimension)
        return views


class Sampler:
    """RoboJam's draw of one touch from an MDN output vector (ARTIFACT.md, Sampling 3), into preallocated rows."""

    def __init__(self, out: np.ndarray, mixtures: int, d: int, temperature: float, epsilon: float, scale: float):
        md = mixtures * d
        self.logits, self.mus, self.sigmas = out[2 * md :], out[:md], out[md : 2 * md]
        self.d, self.last = d, mixtures - 1
        self.inv_temperature = 1.0 / float(temperature)
        self.epsilon, self.scale = F32(epsilon), F32(scale)
        self.neg = np.empty(d, dtype=F32)
        self.low = np.array([0.0, 0.0, MIN_DT], dtype=F32)
        self.high = np.array([1.0, 1.0, np.inf], dtype=F32)

    def sigma_into(self, raw: np.ndarray, out: np.ndarray) -> None:
        """out = elu(raw) + 1 + epsilon: keras-mdn-layer's sigma activation. Its expm1 is libm's in float64, rounded
        to float32, as service/batch_kernels.py's draw computes it (NumPy's float32 expm1 is SIMD code on AVX-512
        CPUs and differs from libm in the last bit for about one negative input in four)."""
        np.minimum(raw, 0.0, out=self.neg)
        self.neg[:] = [math.expm1(v) for v in self.neg.tolist()]
        np.maximum(raw, 0.0, out=out)
        out += self.neg
        out += F32(1.0)
        out += self.epsilon

    def choose(self, u: float, logits: np.ndarray | None = None) -> int:
        """Mixture index ~ softmax(logits / temperature): the first whose cumulative weight reaches u."""
        logits = (self.logits if logits is None else logits).tolist()  # M is small: plain floats beat NumPy calls
        top = max(logits)  # the top logit weighs exp(0) = 1 even when 1/temperature overflows to inf
        weights = [math.exp((v - top) * self.inv_temperature) if v != top else 1.0 for v in logits]
        total = 0.0
        for weight in weights:  # left to right, as sample_rows adds them: sum() compensates from Python 3.12 on
            total += weight
        threshold, m, acc = u * total, 0, weights[0]
        while acc < threshold and m < self.last:
            m += 1
            acc += weights[m]
        return m

    def sample(self, u: float, noise: np.ndarray, *, out: np.ndarray) -> None:
        """out = clip((mu_m + (elu(s_m) + 1 + eps) * noise) / scale); `noise` already carries sqrt(sigma_temp)."""
        begin = self.choose(u) * self.d
        self.sigma_into(self.sigmas[begin : begin + self.d], out)
        self._finish(self.mus[begin : begin + self.d], noise, out)

    def sample_activated(self, output: np.ndarray, u: float, noise: np.ndarray, *, out: np.ndarray) -> None:
        """The same draw from another MDN output vector `mus|sigmas|pi_logits` whose sigmas are already activated
        (a Keras model's output): the benchmark compares Keras against the engine with it."""
        md = self.mus.size
        begin = self.choose(u, output[2 * md :]) * self.d
        out[:] = output[md + begin : md + begin + self.d]
        self._finish(output[begin : begin + self.d], noise, out)

    def _finish(self, mus: np.ndarray, noise: np.ndarray, out: np.ndarray) -> None:
        """out holds the chosen sigmas: scale the noise by them, add the means, unscale, clip."""
        out *= noise
        out += mus
        out /= self.scale
        np.fmax(out, self.low, out=out)  # fmax/fmin also map a NaN to the bound: every row stays valid
        np.fmin(out, self.high, out=out)


class Engine:
    """A loaded RoboJam model. Build with `Engine.load(path)` (the service's: MicroJam's 3-D input only), or
    `Engine(robojam_format.artifact.load(path))` for an artifact of any input dimension (conformance, benchmarks):
    `mdn_outputs` runs any, `continue_performance` samples `[x, y, dt]` touches only."""

    def __init__(self, artifact: Artifact, precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
        self.precision = precision
        self.metadata = dict(artifact.metadata)
        self.units, self.layers, self.mixtures = artifact.units, artifact.layers, artifact.mixtures
        self.dimension, self.scale = artifact.dimension, artifact.scale
        self.sigma_epsilon = artifact.sigma_epsilon
        self.recurrent_activation = artifact.recurrent_activation
        gate_scale = GATE_SCALE[self.recurrent_activation]
        u, md = self.units, self.mixtures * self.dimension
        self.output_size = 2 * md + self.mixtures
        arrays = artifact.arrays
        self._stacked, self._input_weights, self._recurrent_weights, self._biases = [], [], [], []
        for i in range(self.layers):
            n_in = self.dimension if i == 0 else u
            stacked = np.empty((n_in + u, 4 * u), dtype=F32)  # filled block by block: no full-size temporaries
            _gates_into(arrays[f"lstm_{i}_kernel"], stacked[:n_in], u, gate_scale)
            _gates_into(arrays[f"lstm_{i}_recurrent_kernel"], stacked[n_in:], u, gate_scale)
            bias = np.empty(4 * u, dtype=F32)
            _gates_into(arrays[f"lstm_{i}_bias"], bias, u, gate_scale)
            stacked = _frozen(stacked)
            self._stacked.append(stacked)
            self._input_weights.append(stacked[:n_in])  # read-only views: no extra memory
            self._recurrent_weights.append(stacked[n_in:])
            self._biases.append(_frozen(bias))
        parts = ("mdn_mus", "mdn_sigmas", "mdn_pi")
        self._head = _frozen(np.concatenate([arrays[f"{p}_kernel"] for p in parts], axis=1))
        self._head_bias = _frozen(np.concatenate([arrays[f"{p}_bias"] for p in parts]))
        self._md = md
        # The compiled kernels' copies (service/batch_kernels.py: panels, the bias as row 0): a whole step's stacked
        # layers, and for conditioning the input part with the bias and the recurrent part with none.
        self._kernels = kernels = _kernels()
        self._hard = self.recurrent_activation == "hard_sigmoid"
        self._int8 = None  # int8: every product of both paths goes through service/int8_kernels.py
        if precision == "int8":  # it computes from its own weights: no float32 packed copies
            from service import int8_kernels

            self._int8 = int8_kernels.Products(self._stacked, self._biases, self._head, self._head_bias, self.dimension)
            return
        no_bias = np.zeros(4 * u, dtype=F32)
        layers = zip(self._stacked, self._input_weights, self._recurrent_weights, self._biases, strict=True)
        self._packed_layers, self._packed_inputs, self._packed_recurrent = zip(
            *((kernels.packed(w, b), kernels.packed(k, b), kernels.packed(r, no_bias)) for w, k, r, b in layers),
            strict=True,
        )
        self._packed_head = kernels.packed(self._head, self._head_bias)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, precision: str = "fp32") -> Engine:
        """Load and validate an artifact (`None`: $ROBOJAM_WEIGHTS, else the shipped weights), to run in
        `precision` (PRECISIONS)."""
        return cls(configured_weights() if path is None else load_weights(path), precision)

    def weight_arrays(self) -> tuple[np.ndarray, ...]:
        """Every weight array the engine computes with, views included (all read-only)."""
        return (
            *self._stacked, *self._input_weights, *self._recurrent_weights, *self._biases, self._head, self._head_bias,
        )  # fmt: skip

    # ---- one row at a time (the conditioning path and the generation step) --------------------------------

    def prefill(self, state: BatchState, row: int, scaled: np.ndarray, head_out: np.ndarray | None = None) -> None:
        """Run `scaled` (T, D) float32 through the stack from `row`'s state, layer by layer, CHUNK events per product.

        The row's state ends as after the last event. With `head_out` (T, output_size), the raw MDN head (before
        the sigma activation) for every event is written there.
        """
        views, size, kernels = state._row(row), len(state.proj), self._kernels
        if self._int8 is not None:  # int8: each event takes the generation step's products, as step_rows feeds it
            for t, event in enumerate(scaled):
                views.x[:] = event
                self._layers(state, views.z, 1, views.g, views.c)
                if head_out is not None:
                    self._head_product(state, views.z, 1, head_out[t : t + 1])
            return
        for start in range(0, len(scaled), CHUNK):
            layer_in = scaled[start : start + CHUNK]
            n = len(layer_in)
            if n > size:
                raise ValueError(f"the state's conditioning scratch holds {size} events, not {n}.")
            proj = state.proj[:n]
            for layer in range(self.layers):
                kernels.matmul_rows(layer_in, 0, n, self._packed_inputs[layer], proj)  # all events' input at once
                seq = state.seq[layer % 2][:n]
                kernels.condition_rows(
                    proj, n, self._packed_recurrent[layer], views.z, state.h_starts[layer], views.c[layer], views.g,
                    seq, self._hard,
                )  # fmt: skip
                layer_in = seq
            if head_out is not None:
                kernels.matmul_rows(layer_in, 0, n, self._packed_head, head_out[start : start + n])

    def step(self, state: BatchState, row: int) -> None:
        """One time step for `row` from its input `z[row, :D]`; the raw head output lands in `out[row]`."""
        self._step(state, state._row(row))

    def head(self, state: BatchState, row: int) -> None:
        """The raw MDN head output for `row`'s last layer state, into `out[row]`."""
        self._head_into(state, state._row(row))

    def cell(self, state: BatchState, row: int, layer: int) -> None:
        """Finish `row`'s LSTM step for `layer` from its pre-activations in `g[row]` (the step's elementwise part)."""
        views = state._row(row)
        self._kernels.cell_rows(views.g, views.c[layer], views.z, state.h_starts[layer], 1, self._hard)

    def _step(self, state: BatchState, views: _RowViews) -> None:
        self._layers(state, views.z, 1, views.g, views.c)
        self._head_into(state, views)

    def _head_into(self, state: BatchState, views: _RowViews) -> None:
        self._head_product(state, views.z, 1, views.out)

    def _layers(self, state: BatchState, z: np.ndarray, n: int, g: np.ndarray, c) -> None:
        """One LSTM step of every layer for rows 0..n-1 of `z` (c[layer]: their cell states): each layer's product,
        fp32 or int8, then the compiled cell, the same code for one row and for many."""
        kernels, hard = self._kernels, self._hard
        for layer, (lo, h_lo) in enumerate(zip(state.input_starts, state.h_starts, strict=True)):
            if self._int8 is not None:
                self._int8.layer(layer, z, n, g)
            else:
                kernels.matmul_rows(z, lo, n, self._packed_layers[layer], g)
            kernels.cell_rows(g, c[layer], z, h_lo, n, hard)

    def _head_product(self, state: BatchState, z: np.ndarray, n: int, out: np.ndarray) -> None:
        if self._int8 is not None:
            self._int8.head(z, n, out)
        else:
            self._kernels.matmul_rows(z, state.h_starts[-1], n, self._packed_head, out)

    def activate_sigmas(self, outputs: np.ndarray) -> None:
        """In place on raw MDN outputs (..., output_size): elu(s) + 1 + epsilon on the sigma columns
        (keras-mdn-layer's sigma activation)."""
        sigmas = outputs[..., self._md : 2 * self._md]
        negative = np.minimum(sigmas, 0.0)
        np.expm1(negative, out=negative)
        np.maximum(sigmas, 0.0, out=sigmas)
        sigmas += negative
        sigmas += F32(1.0)
        sigmas += F32(self.sigma_epsilon)

    def _check_events(self, events: np.ndarray, name: str) -> np.ndarray:
        events = np.asarray(events)
        if events.ndim != 2 or events.shape[1] != self.dimension or events.shape[0] < 1:
            raise ValueError(f"{name} must have shape (n >= 1, {self.dimension}), got {events.shape}.")
        if not np.issubdtype(events.dtype, np.number) or not np.isfinite(events).all():
            raise ValueError(f"{name} must hold finite numbers.")
        return events

    def mdn_outputs(self, scaled_inputs: np.ndarray, *, stepwise: bool = False) -> np.ndarray:
        """(T, D) inputs in the scaled space -> (T, 2MD+M) MDN outputs `mus|sigmas|pi_logits`, from zero state.

        `stepwise=True` runs the generation path (one fused step at a time) instead of the conditioning path,
        so tests can hold both to the Keras model.
        """
        scaled = np.array(self._check_events(scaled_inputs, "scaled_inputs"), dtype=F32, order="C")
        state = BatchState(self, 1, chunk=1 if stepwise else min(len(scaled), CHUNK))
        out = np.empty((len(scaled), self.output_size), dtype=F32)
        if stepwise:
            views = state._row(0)
            for event, result in zip(scaled, out, strict=True):
                views.x[:] = event
                self._step(state, views)
                result[:] = views.out[0]
        else:
            self.prefill(state, 0, scaled, head_out=out)
        self.activate_sigmas(out)
        return out

    # ---- a continuation ------------------------------------------------------------------------------------

    def prepare(self, events, seconds, temperature, sigma_temperature, rng) -> Request:
        """The checked, scaled and drawn `Request` of a continue_performance call (same arguments); raises on any
        bad argument. All randomness comes up front, one vectorised draw each from the caller's Generator."""
        if self.dimension != DIMENSION:
            raise ValueError(
                f"sampling needs a {DIMENSION}-D [x, y, dt] model; this one's dimension is {self.dimension}."
            )
        events = self._check_events(events, "events")
        _check_number("seconds", seconds, allow_zero=False)
        _check_number("temperature", temperature, allow_zero=False)
        _check_number("sigma_temperature", sigma_temperature, allow_zero=True)
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator.")
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = (events * self.scale).astype(F32)
        if not np.isfinite(scaled).all():
            raise ValueError("events are too large to scale in float32.")
        choices = rng.random(MAX_STEPS)
        noise = rng.standard_normal((MAX_STEPS, self.dimension), dtype=F32)
        noise *= F32(math.sqrt(sigma_temperature))  # covariance diag(sigma^2) * sigma_temperature
        return Request(scaled, choices, noise, float(seconds), float(temperature))

    def continue_performance(
        self,
        events: np.ndarray,
        *,
        seconds: float = 5.0,
        temperature: float = DEFAULT_TEMPERATURE,
        sigma_temperature: float = DEFAULT_SIGMA_TEMPERATURE,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Condition on `events` (n, 3) `[x, y, dt]`, then sample touches until their dt sums to `seconds`.

        Returns (m, 3) float32 `[x, y, dt]`, m <= MAX_STEPS; every row has x, y in [0, 1] and dt >= MIN_DT.
        """
        request = self.prepare(events, seconds, temperature, sigma_temperature, rng)
        rows = len(request.scaled)
        state = BatchState(self, 1, chunk=min(rows, CHUNK), length=rows)
        slot = state.add(request)
        self.run_alone(state, 0)
        return state.result(slot)

    def run_alone(self, state: BatchState, row: int, interrupted: Callable[[], bool] | None = None) -> bool:
        """Run `row`'s request on its own: conditioning (`prefill`) a chunk at a time, then the head and its first
        touch, then generation step by step, each touch drawn by the compiled draw (the Sampler's arithmetic) and fed
        back. True once the request is done; False as soon as `interrupted()` says so between chunks or steps, with
        its state and progress in `state` (so it can go on in `step_rows`, or here again)."""
        slot = int(state.slots[row])
        views = state._row(row)
        length, fed = int(state.length[slot]), int(state.fed[slot])
        if fed < length:
            scaled = state.scaled[slot]
            while True:
                end = min(length, fed + CHUNK)
                self.prefill(state, row, scaled[fed:end])
                state.fed[slot] = fed = end
                if fed == length:
                    break
                if interrupted is not None and interrupted():
                    return False
            self._head_into(state, views)  # and the first touch at once: the batched step expects a touch in x
        elif interrupted is not None and interrupted():
            return False
        else:
            self._step(state, views)
        draw = functools.partial(
            self._kernels.sample_rows, state.out, views.row, state.slots, self.mixtures, F32(self.scale),
            F32(self.sigma_epsilon), state.choices, state.noise, state.generated, state.steps, state.total,
            state.seconds, state.inv_temperature, state.z, state.finished,
        )  # fmt: skip
        while not draw():  # the touch is fed back into x unless the request is done
            if interrupted is not None and interrupted():
                return False
            self._step(state, views)
        state.finished[row] = False
        return True

    # ---- rows together (the batching loop) -----------------------------------------------------------------

    def step_rows(self, state: BatchState) -> list[int]:
        """One iteration for every active row, in one product per layer: each row still conditioning is fed its
        next event, then all take one LSTM step and the head, then each row that has no event left draws its next
        touch (fed back into its `x`). Returns the rows whose request is now done, highest first (so removing
        them in that order moves none that is still to remove)."""
        kernels, n = self._kernels, state.active
        drawing = kernels.feed_rows(state.z, state.slots, n, state.fed, state.length, state.scaled, state.sampling)
        self._layers(state, state.z, n, state.g, state.c)  # each product reads the weights once for all n rows
        self._head_product(state, state.z, n, state.out)
        if not drawing:
            return []
        rows = state.sampling[:drawing]
        done = kernels.sample_rows(
            state.out, rows, state.slots, self.mixtures, F32(self.scale), F32(self.sigma_epsilon), state.choices,
            state.noise, state.generated, state.steps, state.total, state.seconds, state.inv_temperature, state.z,
            state.finished,
        )  # fmt: skip
        if not done:
            return []
        finished = sorted((int(row) for row in rows if state.finished[row]), reverse=True)
        state.finished[finished] = False
        return finished

    def cell_rows(self, state: BatchState, layer: int, n: int) -> None:
        """The LSTM cell of `layer` for rows 0..n-1 at once: the one-row `cell`'s code (bit for bit)."""
        self._kernels.cell_rows(state.g, state.c[layer], state.z, state.h_starts[layer], n, self._hard)
