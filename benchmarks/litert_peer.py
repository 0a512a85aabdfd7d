"""The artifact as a LiteRT model: model/litert.py's one-step `.tflite` (built-in ops) with a free batch dimension,
fp32 or dynamic-range int8 (the TF converter's default optimisation: int8 weights, activations quantized on the
fly), run with LiteRT's XNNPACK delegate on one thread. Conditioning steps it once per event, as IMPSY runs it.

One interpreter per row count: its inputs are resized to B rows before its tensors are allocated (and XNNPACK
delegated), so a step is set inputs, invoke, read outputs, by tensor index.
"""

from __future__ import annotations

import numpy as np

from benchmarks.peer import F32, Peer
from model import litert
from robojam_format import artifact as spec


def flatbuffer(artifact: spec.Artifact, *, int8: bool = False) -> bytes:
    """The artifact's one-step model for any number of rows, fp32 or dynamic-range int8."""
    return litert.tflite_bytes(artifact, batch=None, dynamic_range_int8=int8)


class LiteRTPeer(Peer):
    """A one-step `.tflite` flatbuffer stepped in LiteRT (XNNPACK, one thread)."""

    def __init__(self, model: bytes, layers: int, units: int, *, int8: bool = False):
        super().__init__(layers, units)
        self.name, self.precision = "litert", "int8" if int8 else "fp32"
        self.model = model
        self._interpreters: dict[int, tuple] = {}
        self._indices = self._tensor_indices()

    @classmethod
    def from_artifact(cls, artifact: spec.Artifact, *, int8: bool = False) -> LiteRTPeer:
        return cls(flatbuffer(artifact, int8=int8), artifact.layers, artifact.units, int8=int8)

    def _tensor_indices(self) -> tuple[list[tuple[int, list[int]]], list[int]]:
        """The signature's tensors, read from a probe interpreter (a signature runner pins its interpreter's
        tensors, which then cannot be resized): ([(index, shape)] of `inputs` then the states in `state_names`'
        order, [index] of `mdn_outputs` then the states in `output_state_names`' order)."""
        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(model_content=self.model).get_signature_runner()
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        input_names = ["inputs", *litert.state_names(self.layers)]
        output_names = ["mdn_outputs", *litert.output_state_names(self.layers)]
        return [(inputs[n]["index"], list(inputs[n]["shape"])) for n in input_names], [
            outputs[n]["index"] for n in output_names
        ]

    def interpreter(self, rows: int) -> tuple:
        """(interpreter, input indices, output indices) for `rows` rows."""
        if rows not in self._interpreters:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_content=self.model, num_threads=1)  # XNNPACK: LiteRT's default delegate
            inputs, outputs = self._indices
            for index, shape in inputs:
                interpreter.resize_tensor_input(index, [rows, *shape[1:]])
            interpreter.allocate_tensors()
            self._interpreters[rows] = (interpreter, [index for index, _ in inputs], outputs)
        return self._interpreters[rows]

    def condition(self, scaled: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        states, outputs = self.zero_states(1), []
        for event in np.asarray(scaled, dtype=F32):
            out, states = self.step(event[None], states)
            outputs.append(out[0])
        return np.array(outputs), states

    def step(self, x: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        interpreter, inputs, outputs = self.interpreter(len(x))
        interpreter.set_tensor(inputs[0], x.reshape(len(x), 1, -1))
        for index, state in zip(inputs[1:], states, strict=True):
            interpreter.set_tensor(index, state)
        interpreter.invoke()
        return interpreter.get_tensor(outputs[0]), [interpreter.get_tensor(index) for index in outputs[1:]]
