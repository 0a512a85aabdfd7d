"""Export a weights artifact to a LiteRT (`.tflite`) one-step model with built-in ops only, in IMPSY's signature.

Why built-in ops only: IMPSY runs `.tflite` models on a Raspberry Pi, in its iOS/macOS app and in the browser
(LiteRT.js), and Flex (Select TF) ops no longer run from pip TensorFlow >= 2.20. A Keras LSTM converts to a
TensorList while-loop that needs them; this module writes the one step out by hand instead (matrix products, the
artifact's gate activation, tanh, ELU), which converts to FULLY_CONNECTED, LOGISTIC (or MINIMUM/MAXIMUM for Keras
2's hard_sigmoid), TANH, ELU and friends.

The signature (`serving_default`) is IMPSY's `build_mdrnn_model(inference=True)`'s: inputs `inputs` (1, 1, D) in the
scaled space and `state_h_{i}`, `state_c_{i}` (1, units) per layer; outputs `mdn_outputs` (1, 2MD + M): mus,
activated sigmas, pi logits, as the engine's `mdn_outputs`) and each layer's new state as `lstm_{i}` (h) and
`lstm_{i}_1` (c), the names TF 2.16 gave them, which IMPSY's TfliteMDRNN pairs up by sorting.

CLI: python -m model.litert model/weights/robojam.npz --out robojam.tflite   (checks the file in LiteRT against the
artifact's Keras 3 twin, model.export.model_from_artifact; tests/test_model_litert.py holds it to the engine)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from model.cli import cli_main, fail
from robojam_format import artifact as spec

CHECK_STEPS = 200


def state_names(layers: int) -> list[str]:
    """The state inputs in IMPSY's order: h then c, layer by layer."""
    return [f"state_{part}_{i}" for i in range(layers) for part in ("h", "c")]


def output_state_names(layers: int) -> list[str]:
    """The state outputs, in the same order as `state_names` (h is `lstm_i`, c is `lstm_i_1`)."""
    return [name for i in range(layers) for name in (f"lstm_{i}", f"lstm_{i}_1")]


def one_step_function(artifact: spec.Artifact, batch: int | None = 1):
    """A tf.function computing one step of the artifact's network, with IMPSY's input and output names, for `batch`
    rows (`None`: any number, set by resizing the interpreter's inputs; benchmarks/peers.py steps B rows so)."""
    import tensorflow as tf

    u, arrays = artifact.units, artifact.arrays
    if artifact.recurrent_activation == "hard_sigmoid":

        def gate(x):  # Keras 2's hard_sigmoid, as the artifact defines it
            return tf.clip_by_value(0.2 * x + 0.5, 0.0, 1.0)

    else:
        gate = tf.sigmoid
    lstms = [tuple(tf.constant(arrays[key]) for key in spec.lstm_keys(i)) for i in range(artifact.layers)]
    head = {part: tuple(tf.constant(arrays[key]) for key in spec.mdn_keys(part)) for part in spec.MDN_PARTS}
    signature = [tf.TensorSpec((batch, 1, artifact.dimension), tf.float32, name="inputs")]
    signature += [tf.TensorSpec((batch, u), tf.float32, name=name) for name in state_names(artifact.layers)]

    @tf.function(input_signature=signature)
    def step(inputs, *states):
        x, new_states = tf.reshape(inputs, (batch or -1, artifact.dimension)), []
        for i, (kernel, recurrent, bias) in enumerate(lstms):
            h, c = states[2 * i], states[2 * i + 1]
            z = tf.matmul(x, kernel) + tf.matmul(h, recurrent) + bias
            i_gate, f_gate, candidate, o_gate = tf.split(z, 4, axis=1)  # Keras gate order i, f, c, o
            c = gate(f_gate) * c + gate(i_gate) * tf.tanh(candidate)
            x = gate(o_gate) * tf.tanh(c)
            new_states += [x, c]
        mus = tf.matmul(x, head["mdn_mus"][0]) + head["mdn_mus"][1]
        sigmas = tf.nn.elu(tf.matmul(x, head["mdn_sigmas"][0]) + head["mdn_sigmas"][1]) + 1.0 + artifact.sigma_epsilon
        logits = tf.matmul(x, head["mdn_pi"][0]) + head["mdn_pi"][1]
        outputs = {"mdn_outputs": tf.concat([mus, sigmas, logits], axis=1)}
        outputs.update(zip(output_state_names(artifact.layers), new_states, strict=True))
        return outputs

    return step


def tflite_bytes(artifact: spec.Artifact, *, batch: int | None = 1, dynamic_range_int8: bool = False) -> bytes:
    """The `.tflite` flatbuffer of the artifact's one-step model (`batch` rows, as `one_step_function`); the converter
    refuses anything but built-in ops. `dynamic_range_int8`: the converter's default optimisation, int8 weights with
    activations quantized on the fly (LiteRT's dynamic-range quantization)."""
    import tensorflow as tf

    module = tf.Module()
    module.step = one_step_function(artifact, batch)
    with tempfile.TemporaryDirectory() as saved:  # a SavedModel carries the signature's names into the flatbuffer
        tf.saved_model.save(module, saved, signatures={"serving_default": module.step.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if dynamic_range_int8:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        return converter.convert()


def export_tflite(artifact_path: Path, out: Path) -> Path:
    """Write the artifact at `artifact_path` as a one-step `.tflite` model at `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(tflite_bytes(spec.load(artifact_path)))
    return out


class LiteRTStepper:
    """The `.tflite` model run step by step in LiteRT (ai-edge-litert), carrying its states as IMPSY does."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        self.path = str(path)
        self.interpreter = Interpreter(model_path=self.path)  # as IMPSY runs it: LiteRT's defaults
        self.runner = self.interpreter.get_signature_runner()
        inputs = self.runner.get_input_details()
        self.layers = (len(inputs) - 1) // 2
        self.units = int(inputs["state_h_0"]["shape"][-1])
        self.dimension = int(inputs["inputs"]["shape"][-1])

    def ops(self) -> set[str]:
        """The names of the model's operators as written (read without LiteRT's default XNNPACK delegate, which
        would show its own nodes as DELEGATE)."""
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        plain = Interpreter(
            model_path=self.path, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        return {op["op_name"] for op in plain._get_ops_details()}

    def mdn_outputs(self, scaled: np.ndarray) -> np.ndarray:
        """(T, D) inputs in the scaled space -> (T, 2MD + M) MDN outputs, from zero state, one invocation a step."""
        states = {name: np.zeros((1, self.units), np.float32) for name in state_names(self.layers)}
        rows = []
        for event in np.asarray(scaled, dtype=np.float32):
            out = self.runner(inputs=event.reshape(1, 1, -1), **states)
            rows.append(out["mdn_outputs"][0])
            states = dict(zip(state_names(self.layers), (out[n] for n in output_state_names(self.layers)), strict=True))
        return np.array(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.litert", description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path, help="a weights artifact (.npz)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the .tflite model")
    args = parser.parse_args(argv)
    if args.out.suffix != ".tflite":
        fail(f"--out must end in .tflite, got {args.out}.")
    try:
        artifact = spec.load(args.artifact)
    except spec.ArtifactError as exc:
        fail(str(exc))
    out = export_tflite(args.artifact, args.out)

    from model.export import model_from_artifact

    rng = np.random.default_rng(0)
    scaled = rng.uniform(0.0, 1.0, (CHECK_STEPS, artifact.dimension)).astype(np.float32) * np.float32(artifact.scale)
    expected = np.asarray(model_from_artifact(args.artifact)(scaled[None]))[0]
    stepper = LiteRTStepper(out)
    error = float(np.abs(stepper.mdn_outputs(scaled) - expected).max())
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); ops: {', '.join(sorted(stepper.ops()))}")
    print(f"LiteRT vs Keras over {CHECK_STEPS} steps: max |difference| {error:.2e}")
    return 0


if __name__ == "__main__":
    cli_main(main)
