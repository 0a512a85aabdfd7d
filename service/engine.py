"""RoboJam inference in NumPy: the LSTM stack, the MDN head and RoboJam's sampling (model/ARTIFACT.md).

Why it is fast without a framework:
- Weights are rearranged once at load: each layer's `[kernel; recurrent_kernel]` is stacked so a generation step is
  one matrix-vector product per layer (`[x, h] @ W`), gates are reordered to `i, f, o, c` so the three sigmoids are
  one contiguous slice, and the sigmoid columns are pre-halved so `sigmoid(x) = 0.5 * tanh(x / 2) + 0.5` needs one
  `tanh` over all four gates (halving by a power of two is exact in floating point). An artifact whose gates use
  Keras 2's hard_sigmoid keeps them unscaled and takes `hard_sigmoid_cell` instead (ARTIFACT.md).
- Conditioning runs layer by layer: each layer's input projection for all conditioning events is one
  matrix-matrix product (per CHUNK events, to bound memory on huge inputs), only the recurrent part is stepped.
- A call allocates its buffers once (state vector laid out as `[x, h_0, ..., h_{L-1}]`, so each layer's
  `[input, h]` is a contiguous view) and every step writes into them with `out=`; float32 throughout.

The `Engine` is read-only after `load` and safe to share between threads: every call owns its LSTM state and
uses the caller's `numpy.random.Generator`.
"""

from __future__ import annotations

import math
import os

import numpy as np

from robojam_format.performance import DIMENSION
from service.artifact import Artifact, load_artifact

MAX_STEPS = 1000  # RoboJam's cap on generated touches per continuation
MIN_DT = 0.001  # smallest generated time step, seconds
# Conditioning events per input-projection product: bounds per-call memory, and is the one chunk both the engine and
# the batcher's lone-request path use, so their products are the same calls and their replies equal bit for bit
# (OpenBLAS rounds a row differently depending on a call's shape). 128 holds the typical ~100-event request in one go;
# a newcomer waits at most one chunk to join a lone request.
CHUNK = 128
F32 = np.float32


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


def hard_sigmoid_cell(g: np.ndarray, c: np.ndarray, tmp: np.ndarray, units: int) -> None:
    """The cell state update for Keras 2's hard_sigmoid gates, in place, for one row or a batch of rows (last axis).

    `g` holds the unscaled pre-activations `[i, f, o, c~]` (gate_scale 1.0): the gates become
    clip(0.2 * x + 0.5, 0, 1), the candidate tanh(c~), then c = f * c + i * c~. `tmp` is scratch of c's shape.
    The engine's cell and the batcher both call it, so their hard_sigmoid paths are the same arithmetic.
    """
    gates, i, f, cand = g[..., : 3 * units], g[..., :units], g[..., units : 2 * units], g[..., 3 * units :]
    np.tanh(cand, out=cand)
    np.multiply(gates, F32(0.2), out=gates)
    np.add(gates, F32(0.5), out=gates)
    np.clip(gates, F32(0.0), F32(1.0), out=gates)
    np.multiply(f, c, out=c)
    np.multiply(i, cand, out=tmp)
    np.add(c, tmp, out=c)


class _Workspace:
    """One call's buffers: LSTM state, gate scratch and the views into them, allocated once per call."""

    def __init__(self, engine: Engine, rows: int):
        u, d, layers = engine.units, engine.dimension, engine.layers
        self.units, self.hard_sigmoid = u, engine.recurrent_activation == "hard_sigmoid"
        self.z = np.zeros(d + layers * u, dtype=F32)  # [x, h_0, ..., h_{L-1}]
        self.x = self.z[:d]
        self.h = [self.z[d + i * u : d + (i + 1) * u] for i in range(layers)]
        # Layer i reads [its input, its own h] as one contiguous slice of z.
        self.inputs = [self.z[: d + u]] + [self.z[d + (i - 1) * u : d + (i + 1) * u] for i in range(1, layers)]
        self.c = np.zeros((layers, u), dtype=F32)
        self.g = np.empty(4 * u, dtype=F32)
        self.gate_views = (self.g[: 3 * u], self.g[:u], self.g[u : 2 * u], self.g[2 * u : 3 * u], self.g[3 * u :])
        self.tmp = np.empty(u, dtype=F32)
        self.out = np.empty(engine.output_size, dtype=F32)
        chunk = max(1, min(rows, CHUNK))
        self.proj = np.empty((chunk, 4 * u), dtype=F32)
        self.seq = (np.empty((chunk, u), dtype=F32), np.empty((chunk, u), dtype=F32))

    def cell(self, layer: int) -> None:
        """Finish an LSTM step for `layer` from pre-activations in `g` (already `x@K + h@R + b`)."""
        g, c, h, tmp = self.g, self.c[layer], self.h[layer], self.tmp
        sig, i, f, o, cand = self.gate_views
        if self.hard_sigmoid:
            hard_sigmoid_cell(g, c, tmp, self.units)
        else:
            np.tanh(g, out=g)
            np.multiply(sig, 0.5, out=sig)
            np.add(sig, 0.5, out=sig)
            np.multiply(f, c, out=c)
            np.multiply(i, cand, out=tmp)
            np.add(c, tmp, out=c)
        np.tanh(c, out=tmp)
        np.multiply(o, tmp, out=h)


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
        """out = elu(raw) + 1 + epsilon: keras-mdn-layer's sigma activation."""
        np.minimum(raw, 0.0, out=self.neg)
        np.expm1(self.neg, out=self.neg)
        np.maximum(raw, 0.0, out=out)
        out += self.neg
        out += F32(1.0)
        out += self.epsilon

    def choose(self, u: float, logits: np.ndarray | None = None) -> int:
        """Mixture index ~ softmax(logits / temperature): the first whose cumulative weight reaches u."""
        logits = (self.logits if logits is None else logits).tolist()  # M is small: plain floats beat NumPy calls
        top = max(logits)  # the top logit weighs exp(0) = 1 even when 1/temperature overflows to inf
        weights = [math.exp((v - top) * self.inv_temperature) if v != top else 1.0 for v in logits]
        threshold, m, acc = u * sum(weights), 0, weights[0]
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

    def __init__(self, artifact: Artifact):
        self.metadata = dict(artifact.metadata)
        self.units, self.layers, self.mixtures = artifact.units, artifact.layers, artifact.mixtures
        self.dimension, self.scale = artifact.dimension, artifact.scale
        self.sigma_epsilon = artifact.sigma_epsilon
        self.recurrent_activation = artifact.recurrent_activation
        gate_scale = GATE_SCALE[self.recurrent_activation]
        u, md = self.units, self.mixtures * self.dimension
        self.output_size = 2 * md + self.mixtures
        arrays = artifact.arrays
        self._stacked, self._kernels, self._recurrent, self._biases = [], [], [], []
        for i in range(self.layers):
            n_in = self.dimension if i == 0 else u
            stacked = np.empty((n_in + u, 4 * u), dtype=F32)  # filled block by block: no full-size temporaries
            _gates_into(arrays[f"lstm_{i}_kernel"], stacked[:n_in], u, gate_scale)
            _gates_into(arrays[f"lstm_{i}_recurrent_kernel"], stacked[n_in:], u, gate_scale)
            bias = np.empty(4 * u, dtype=F32)
            _gates_into(arrays[f"lstm_{i}_bias"], bias, u, gate_scale)
            self._stacked.append(_frozen(stacked))
            self._kernels.append(stacked[:n_in])  # views: no extra memory
            self._recurrent.append(stacked[n_in:])
            self._biases.append(_frozen(bias))
        parts = ("mdn_mus", "mdn_sigmas", "mdn_pi")
        self._head = _frozen(np.concatenate([arrays[f"{p}_kernel"] for p in parts], axis=1))
        self._head_bias = _frozen(np.concatenate([arrays[f"{p}_bias"] for p in parts]))
        self._md = md

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Engine:
        """Load and validate an artifact (`None`: $ROBOJAM_WEIGHTS, else the shipped weights)."""
        return cls(load_artifact(path))

    # ---- network -------------------------------------------------------------------------------------------

    def _condition(self, ws: _Workspace, scaled: np.ndarray, head_out: np.ndarray | None = None) -> None:
        """Run `scaled` (T, D) through the stack from `ws`'s state, layer by layer in chunks.

        The state in `ws` ends as after the last event. With `head_out` (T, output_size), the raw MDN head
        (before the sigma activation) for every step is written there.
        """
        for start in range(0, len(scaled), CHUNK):
            layer_in = scaled[start : start + CHUNK]
            n = len(layer_in)
            proj = ws.proj[:n]
            for layer in range(self.layers):
                np.matmul(layer_in, self._kernels[layer], out=proj)  # all events' input projection at once
                np.add(proj, self._biases[layer], out=proj)
                recurrent, h, seq = self._recurrent[layer], ws.h[layer], ws.seq[layer % 2][:n]
                for t in range(n):
                    np.matmul(h, recurrent, out=ws.g)
                    np.add(ws.g, proj[t], out=ws.g)
                    ws.cell(layer)
                    seq[t] = h
                layer_in = seq
            if head_out is not None:
                np.matmul(layer_in, self._head, out=head_out[start : start + n])
                np.add(head_out[start : start + n], self._head_bias, out=head_out[start : start + n])

    def _step(self, ws: _Workspace) -> None:
        """One time step from the input in `ws.x`; the raw head output lands in `ws.out`."""
        for layer in range(self.layers):
            np.matmul(ws.inputs[layer], self._stacked[layer], out=ws.g)
            np.add(ws.g, self._biases[layer], out=ws.g)
            ws.cell(layer)
        self._head_into(ws)

    def _head_into(self, ws: _Workspace) -> None:
        """The raw MDN head output for the last layer's state, into `ws.out`."""
        np.matmul(ws.h[-1], self._head, out=ws.out)
        np.add(ws.out, self._head_bias, out=ws.out)

    def _activate_sigmas(self, sigmas: np.ndarray) -> None:
        """In place: elu(s) + 1 + epsilon (keras-mdn-layer's sigma activation)."""
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
        scaled = self._check_events(scaled_inputs, "scaled_inputs").astype(F32, copy=False)
        ws = _Workspace(self, 1 if stepwise else len(scaled))
        out = np.empty((len(scaled), self.output_size), dtype=F32)
        if stepwise:
            for row, result in zip(scaled, out, strict=True):
                ws.x[:] = row
                self._step(ws)
                result[:] = ws.out
        else:
            self._condition(ws, scaled, head_out=out)
        self._activate_sigmas(out[:, self._md : 2 * self._md])
        return out

    # ---- sampling ------------------------------------------------------------------------------------------

    def check_request(self, events, seconds, temperature, sigma_temperature, rng) -> np.ndarray:
        """The checked events of a continue_performance call; raises on any bad argument (the batcher shares it)."""
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
        return events

    def scale_events(self, events: np.ndarray) -> np.ndarray:
        """Events in the network's scaled float32 space; ValueError if they overflow it."""
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = (events * self.scale).astype(F32)
        if not np.isfinite(scaled).all():
            raise ValueError("events are too large to scale in float32.")
        return scaled

    def draw(self, rng: np.random.Generator, sigma_temperature: float) -> tuple[np.ndarray, np.ndarray]:
        """All randomness for one request up front: one vectorised draw each from the caller's Generator, so a
        seed gives the same reply batched or alone."""
        choices = rng.random(MAX_STEPS)
        noise = rng.standard_normal((MAX_STEPS, self.dimension), dtype=F32)
        noise *= F32(math.sqrt(sigma_temperature))  # covariance diag(sigma^2) * sigma_temperature
        return choices, noise

    def continue_performance(
        self,
        events: np.ndarray,
        *,
        seconds: float = 5.0,
        temperature: float = 1.5,
        sigma_temperature: float = 0.01,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Condition on `events` (n, 3) `[x, y, dt]`, then sample touches until their dt sums to `seconds`.

        Returns (m, 3) float32 `[x, y, dt]`, m <= MAX_STEPS; every row has x, y in [0, 1] and dt >= MIN_DT.
        """
        events = self.check_request(events, seconds, temperature, sigma_temperature, rng)
        d = self.dimension
        scaled = self.scale_events(events)
        ws = _Workspace(self, len(events))
        self._condition(ws, scaled)
        self._head_into(ws)

        choices, noise = self.draw(rng, sigma_temperature)
        choices = choices.tolist()

        generated = np.empty((MAX_STEPS, d), dtype=F32)
        sampler = Sampler(ws.out, self.mixtures, d, temperature, self.sigma_epsilon, self.scale)
        total, steps = 0.0, 0
        while True:
            row = generated[steps]
            sampler.sample(choices[steps], noise[steps], out=row)
            steps += 1
            total += row.item(d - 1)
            if total >= seconds or steps >= MAX_STEPS:
                break
            np.multiply(row, sampler.scale, out=ws.x)  # feed the clipped touch back, in the scaled space
            self._step(ws)
        return generated[:steps].copy()
