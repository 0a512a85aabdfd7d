"""What `make bench-peers` asks of a peer runtime (ONNX Runtime, LiteRT), and the one continuation loop they share.

A peer is the artifact's network built for another runtime. It conditions a batch-1 state on a whole sequence and
steps B rows at once; it keeps no state itself (each call takes the states and returns the new ones), so one peer
can serve a whole request and a batched step in alternating rounds. `continuation` is the engine's own request with a
peer's network: the engine checks, scales and draws (`Engine.prepare`), and the engine's `Sampler` draws each touch
from the peer's MDN outputs, so every method samples with the same NumPy code and the same draws.
"""

from __future__ import annotations

import numpy as np

from service.engine import MAX_STEPS, Engine, Request, Sampler

F32 = np.float32


class Peer:
    """A network in another runtime: `condition` and `step` return MDN outputs `mus|sigmas|pi_logits` with the
    sigmas activated (as `Engine.mdn_outputs`), and the LSTM states `[h_0, c_0, h_1, c_1, ...]`, each (rows, units)."""

    name = "peer"
    precision = "fp32"

    def __init__(self, layers: int, units: int):
        self.layers, self.units = layers, units

    def zero_states(self, rows: int) -> list[np.ndarray]:
        return [np.zeros((rows, self.units), dtype=F32) for _ in range(2 * self.layers)]

    def condition(self, scaled: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """(T, D) scaled events from zero state, one row -> ((T, output) MDN outputs, the states after the last)."""
        raise NotImplementedError

    def step(self, x: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One step for B rows: x (B, D) scaled -> ((B, output) MDN outputs, the new states)."""
        raise NotImplementedError

    def stepwise(self, scaled: np.ndarray) -> np.ndarray:
        """(T, D) or (T, B, D) events fed one step at a time from zero state -> (T, [B,] output) MDN outputs."""
        rows = scaled[:, None] if scaled.ndim == 2 else scaled
        states, outputs = self.zero_states(rows.shape[1]), []
        for x in rows:
            out, states = self.step(np.ascontiguousarray(x, dtype=F32), states)
            outputs.append(out)
        result = np.array(outputs)
        return result[:, 0] if scaled.ndim == 2 else result


def continuation(peer: Peer, engine: Engine, request: Request) -> np.ndarray:
    """`request` run with `peer`'s network and the engine's sampling: condition, then draw and feed back each touch
    until their dt sums to the request's seconds (or MAX_STEPS), as `Engine.run_alone` does. (m, D) touches."""
    d = engine.dimension
    outputs, states = peer.condition(request.scaled)
    out = outputs[-1]
    sampler = Sampler(np.zeros(engine.output_size, dtype=F32), engine.mixtures, d, request.temperature,
                      engine.sigma_epsilon, engine.scale)  # fmt: skip
    generated = np.empty((MAX_STEPS, d), dtype=F32)
    x, total = np.empty((1, d), dtype=F32), 0.0
    for step in range(MAX_STEPS):
        touch = generated[step]
        sampler.sample_activated(out, request.choices.item(step), request.noise[step], out=touch)
        total += touch.item(d - 1)
        if total >= request.seconds or step + 1 == MAX_STEPS:
            break
        np.multiply(touch, sampler.scale, out=x[0])
        outputs, states = peer.step(x, states)
        out = outputs[0]
    return generated[: step + 1].copy()
