"""The artifact as ONNX Runtime models, built with `onnx.helper` from its arrays (no converter): the ONNX `LSTM`
operator over the whole conditioning sequence, and a one-step model (the same operator, one step, B rows) for
generation; `int8=True` passes both through ONNX Runtime's `quantize_dynamic` (int8 weights, activations quantized
on the fly).

Keras stores each layer's gates `i, f, c, o` in `(inputs, 4U)` kernels; ONNX's LSTM wants `i, o, f, c` in `(4U,
inputs)` and a second bias for the recurrent product (zero here). The MDN head is a MatMul, and the sigmas are
activated in the graph (ELU, then + 1, then + epsilon, the engine's order), so the outputs are `Engine.mdn_outputs`'.
Sessions run as a serving user would set them: one intra- and one inter-op thread, sequential execution, all graph
optimizations.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from benchmarks.peer import F32, Peer
from robojam_format import artifact as spec

OPSET = 17
KERAS_TO_ONNX_GATES = (0, 3, 1, 2)  # ONNX's i, o, f, c taken from Keras' i, f, c, o blocks


def onnx_gates(keras: np.ndarray) -> np.ndarray:
    """Keras' gate blocks `i, f, c, o` (last axis) reordered to ONNX's `i, o, f, c`."""
    blocks = np.split(np.asarray(keras, dtype=F32), 4, axis=-1)
    return np.concatenate([blocks[i] for i in KERAS_TO_ONNX_GATES], axis=-1)


def state_names(layers: int) -> list[str]:
    return [f"{part}_{i}" for i in range(layers) for part in ("h", "c")]


class _Graph:
    """Nodes and initializers collected while a graph is written."""

    def __init__(self):
        self.nodes, self.initializers = [], []

    def constant(self, name: str, array: np.ndarray) -> str:
        """An initializer `name` (the first definition of a name holds: small shared constants such as axes)."""
        if all(existing.name != name for existing in self.initializers):
            self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], **attributes) -> list[str]:
        self.nodes.append(helper.make_node(op, inputs, outputs, name=f"{op}_{len(self.nodes)}", **attributes))
        return outputs

    def lstm(self, artifact: spec.Artifact, layer: int, x: str, initial: tuple[str, str] | None) -> tuple[str, ...]:
        """The artifact's LSTM `layer` over `x` (T, B, inputs): outputs Y (T, 1, B, U), Y_h and Y_c (1, B, U)."""
        kernel, recurrent, bias = (artifact.arrays[key] for key in spec.lstm_keys(layer))
        u = artifact.units
        w = self.constant(f"W_{layer}", onnx_gates(kernel).T[None].copy())
        r = self.constant(f"R_{layer}", onnx_gates(recurrent).T[None].copy())
        b = self.constant(f"B_{layer}", np.concatenate([onnx_gates(bias), np.zeros(4 * u, F32)])[None])
        inputs = [x, w, r, b] + (["", *initial] if initial else [])
        outputs = [f"Y_{layer}", f"Y_h_{layer}", f"Y_c_{layer}"]
        return tuple(self.node("LSTM", inputs, outputs, hidden_size=u))

    def head(self, artifact: spec.Artifact, h: str, out: str) -> None:
        """The MDN head on `h` (..., U) into `out` (..., 2MD + M), sigmas activated."""
        arrays, md, m = artifact.arrays, artifact.mixtures * artifact.dimension, artifact.mixtures
        kernel = np.concatenate([arrays[f"{part}_kernel"] for part in spec.MDN_PARTS], axis=1)
        bias = np.concatenate([arrays[f"{part}_bias"] for part in spec.MDN_PARTS])
        self.node("MatMul", [h, self.constant("head_kernel", kernel)], ["head_product"])
        self.node("Add", ["head_product", self.constant("head_bias", bias)], ["head_raw"])
        sizes = self.constant("head_sizes", np.array([md, md, m], dtype=np.int64))
        self.node("Split", ["head_raw", sizes], ["mus", "raw_sigmas", "logits"], axis=-1)
        self.node("Elu", ["raw_sigmas"], ["elu_sigmas"], alpha=1.0)
        self.node("Add", ["elu_sigmas", self.constant("one", np.array(1.0, F32))], ["sigmas_plus_one"])
        epsilon = self.constant("epsilon", np.array(artifact.sigma_epsilon, F32))
        self.node("Add", ["sigmas_plus_one", epsilon], ["sigmas"])
        self.node("Concat", ["mus", "sigmas", "logits"], [out], axis=-1)

    def model(self, name: str, inputs: list, outputs: list) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def _tensor(name: str, *shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _squeezed(graph: _Graph, name: str, axis: int) -> str:
    return graph.node("Squeeze", [name, graph.constant(f"axis_{axis}", np.array([axis], np.int64))], [f"{name}_sq"])[0]


def conditioning_model(artifact: spec.Artifact) -> onnx.ModelProto:
    """`inputs` (T, B, D) from zero state -> `mdn_outputs` (T, B, output) and each layer's final `h_i`, `c_i`."""
    graph, x, states = _Graph(), "inputs", []
    for layer in range(artifact.layers):
        y, y_h, y_c = graph.lstm(artifact, layer, x, None)
        x = _squeezed(graph, y, 1)
        states += [_squeezed(graph, y_h, 0), _squeezed(graph, y_c, 0)]
    graph.head(artifact, x, "mdn_outputs")
    for name, state in zip(state_names(artifact.layers), states, strict=True):
        graph.node("Identity", [state], [name])
    output = 2 * artifact.mixtures * artifact.dimension + artifact.mixtures
    outputs = [_tensor("mdn_outputs", "steps", "batch", output)]
    outputs += [_tensor(name, "batch", artifact.units) for name in state_names(artifact.layers)]
    return graph.model("robojam_conditioning", [_tensor("inputs", "steps", "batch", artifact.dimension)], outputs)


def step_model(artifact: spec.Artifact) -> onnx.ModelProto:
    """One step for B rows: `inputs` (B, D) and `h_i`, `c_i` (B, U) -> `mdn_outputs` (B, output), `next_h_i`, ..."""
    graph, names = _Graph(), state_names(artifact.layers)
    axis0 = graph.constant("axis_0", np.array([0], np.int64))
    x = graph.node("Unsqueeze", ["inputs", axis0], ["inputs_seq"])[0]
    for layer in range(artifact.layers):
        initial = tuple(graph.node("Unsqueeze", [name, axis0], [f"{name}_seq"])[0] for name in names[2 * layer :][:2])
        y, y_h, y_c = graph.lstm(artifact, layer, x, initial)
        graph.node("Squeeze", [y_h, axis0], [f"next_h_{layer}"])
        graph.node("Squeeze", [y_c, axis0], [f"next_c_{layer}"])
        x = graph.node("Unsqueeze", [f"next_h_{layer}", axis0], [f"x_{layer + 1}"])[0]
    graph.head(artifact, f"next_h_{artifact.layers - 1}", "mdn_outputs")
    output = 2 * artifact.mixtures * artifact.dimension + artifact.mixtures
    inputs = [_tensor("inputs", "batch", artifact.dimension)] + [_tensor(n, "batch", artifact.units) for n in names]
    outputs = [_tensor("mdn_outputs", "batch", output)]
    outputs += [_tensor(f"next_{name}", "batch", artifact.units) for name in names]
    return graph.model("robojam_step", inputs, outputs)


def quantized(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` through ONNX Runtime's dynamic quantization: int8 weights (LSTM and MatMul), activations quantized
    at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root, level = logging.getLogger(), logging.getLogger().level
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, source)
        root.setLevel(logging.ERROR)  # its advice to pre-process (shape inference) first, on the root logger
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        return onnx.load(target)


def session(model: onnx.ModelProto):
    """An ONNX Runtime CPU session, one thread, sequential, all graph optimizations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


class OnnxPeer(Peer):
    """The artifact in ONNX Runtime: the LSTM operator over the conditioning sequence, the one-step model after."""

    def __init__(self, artifact: spec.Artifact, *, int8: bool = False):
        if artifact.recurrent_activation != "sigmoid":
            raise ValueError(f"the ONNX peer builds sigmoid gates only, not {artifact.recurrent_activation}.")
        super().__init__(artifact.layers, artifact.units)
        self.name, self.precision = "onnxruntime", "int8" if int8 else "fp32"
        models = conditioning_model(artifact), step_model(artifact)
        self.conditioning, self.stepper = (session(quantized(m) if int8 else m) for m in models)
        self.names = state_names(artifact.layers)

    def condition(self, scaled: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        outputs = self.conditioning.run(None, {"inputs": np.asarray(scaled, dtype=F32)[:, None, :]})
        return outputs[0][:, 0], outputs[1:]

    def step(self, x: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        outputs = self.stepper.run(None, {"inputs": x, **dict(zip(self.names, states, strict=True))})
        return outputs[0], outputs[1:]
