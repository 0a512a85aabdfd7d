"""Import a Keras 2 MDRNN saved as HDF5 (IMPSY, EMPI, RoboJam) into the weights artifact, any input dimension.

Reads the file with h5py alone (no Keras: Keras 3 would read a Keras 2 "hard_sigmoid" as its own, other function).
Both kinds of file work: a full model (`model.save`, with `model_config`) and weights only (`save_weights`). The
network is found from the weights' shapes: LSTM layers of three arrays (kernel, recurrent kernel, bias), then one
keras-mdn-layer MDN of six (mus, sigmas and pi, each kernel and bias), in the file's own order; the sizes follow.
The LSTMs' recurrent activation comes from a full model's config; a weights-only file does not record it, so it
must be given (`--recurrent-activation`; Keras 2 and TF 1 defaulted to hard_sigmoid, TF 2's tf.keras to sigmoid).
The input columns' order is not in the file either: IMPSY's and EMPI's dt, x_1, ... unless `--columns` says otherwise,
and a 3-D model needs `--columns` (RoboJam's x,y,dt or IMPSY's dt,x_1,x_2): the service serves only MicroJam's x, y, dt.

CLI: python -m model.import_keras2 MODEL.h5 --out model/weights/NAME.npz [--recurrent-activation hard_sigmoid]
     [--dimension D --units U --layers L --mixtures M] (checked against the file when given) [--columns x,y,dt]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from model.cli import cli_main, fail
from robojam_format import artifact as spec
from robojam_format.performance import DIMENSION

SIZE_FLAGS = ("dimension", "units", "layers", "mixtures")


@dataclass(frozen=True)
class Keras2MDRNN:
    """What a Keras 2 HDF5 file holds: the artifact's arrays and sizes, the gate activation if it says, provenance."""

    arrays: dict[str, np.ndarray]
    sizes: dict[str, int]
    recurrent_activation: str | None
    keras_version: str | None
    full_model: bool


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _weighted_layers(group) -> list[tuple[str, list[np.ndarray]]]:
    """(layer name, its arrays in saved order) for every layer with weights, in the file's layer order."""
    layers = []
    for name in map(_text, group.attrs["layer_names"]):
        layer = group[name]
        names = [_text(n) for n in layer.attrs.get("weight_names", [])]
        if names:
            layers.append((name, [np.asarray(layer[n], dtype=np.float32) for n in names]))
    return layers


def _lstm_config_activations(config: object, found: list[dict]) -> list[dict]:
    """Every LSTM layer config in a (nested) Keras model config, in order."""
    if isinstance(config, dict):
        if config.get("class_name") in ("LSTM", "CuDNNLSTM") and isinstance(config.get("config"), dict):
            found.append({"class_name": config["class_name"], **config["config"]})
        for value in config.values():
            _lstm_config_activations(value, found)
    elif isinstance(config, list):
        for value in config:
            _lstm_config_activations(value, found)
    return found


def _configured_activation(model_config: str, where: Path) -> str:
    """The one recurrent activation of a full model's LSTMs (tanh cells, supported gates), else CLIError."""
    lstms = _lstm_config_activations(json.loads(model_config), [])
    if not lstms:
        fail(f"{where}: its model config has no LSTM layer.")
    if any(lstm["class_name"] != "LSTM" for lstm in lstms):
        fail(f"{where}: CuDNNLSTM layers are not supported (another weight layout).")
    if any(lstm.get("activation") != "tanh" for lstm in lstms):
        fail(f"{where}: an LSTM's activation is not tanh.")
    gates = {str(lstm.get("recurrent_activation")) for lstm in lstms}
    if len(gates) != 1 or not gates <= set(spec.RECURRENT_ACTIVATIONS):
        fail(f"{where}: LSTM recurrent activations {sorted(gates)} are not one of {spec.RECURRENT_ACTIVATIONS}.")
    return gates.pop()


def _lstm_arrays(name: str, weights: list[np.ndarray], where: Path) -> tuple[int, int] | None:
    """(inputs, units) if `weights` are an LSTM's kernel, recurrent kernel and bias, else None."""
    if len(weights) != 3:
        return None
    kernel, recurrent, bias = weights
    if kernel.ndim != 2 or recurrent.ndim != 2 or bias.ndim != 1:
        return None
    units = recurrent.shape[0]
    if recurrent.shape != (units, 4 * units) or kernel.shape[1] != 4 * units or bias.shape != (4 * units,):
        fail(
            f"{where}: layer {name!r} is not a Keras LSTM of {units} units (kernel {kernel.shape}, bias {bias.shape})."
        )
    return kernel.shape[0], units


def read_keras2_h5(path: Path) -> Keras2MDRNN:
    """The MDRNN in a Keras 2 HDF5 file, checked to be LSTMs feeding one MDN; CLIError in one sentence otherwise."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
            group = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in group.attrs:
                fail(f"{path}: not a Keras 2 HDF5 model or weights file (no layer_names).")
            layers = _weighted_layers(group)
            keras_version = group.attrs.get("keras_version", f.attrs.get("keras_version"))
    except OSError as exc:
        fail(f"{path}: not a readable HDF5 file ({exc}).")
    if len(layers) < 2:
        fail(f"{path}: expected LSTM layers and an MDN, found {len(layers)} layer(s) with weights.")
    arrays: dict[str, np.ndarray] = {}
    dimension = units = None
    for i, (name, weights) in enumerate(layers[:-1]):
        shape = _lstm_arrays(name, weights, path)
        if shape is None:
            fail(f"{path}: layer {name!r} is not an LSTM (an MDRNN is LSTMs, then one MDN).")
        n_in, n_units = shape
        if i == 0:
            dimension, units = n_in, n_units
        elif (n_in, n_units) != (units, units):
            fail(f"{path}: layer {name!r} takes {n_in} inputs with {n_units} units; every layer must have {units}.")
        arrays.update(zip(spec.lstm_keys(i), weights, strict=True))
    name, head = layers[-1]
    if len(head) != 6:
        fail(f"{path}: the last layer {name!r} is not a keras-mdn-layer MDN (mus, sigmas, pi kernels and biases).")
    mixtures = head[5].shape[0] if head[5].ndim == 1 else 0
    sizes = {"dimension": dimension, "units": units, "layers": len(layers) - 1, "mixtures": mixtures}
    for part, kernel, bias in zip(spec.MDN_PARTS, head[0::2], head[1::2], strict=True):
        arrays.update(zip(spec.mdn_keys(part), (kernel, bias), strict=True))
    expected = spec.expected_shapes(units, sizes["layers"], max(mixtures, 1), dimension)
    wrong = [key for key, shape in expected.items() if arrays[key].shape != shape]
    if mixtures < 1 or wrong:
        fail(f"{path}: the MDN's shapes do not fit {units} units and input dimension {dimension} ({', '.join(wrong)}).")
    activation = _configured_activation(_text(config), path) if config is not None else None
    return Keras2MDRNN(
        arrays, sizes, activation, None if keras_version is None else _text(keras_version), config is not None
    )


def impsy_columns(path: Path, dimension: int) -> list[str]:
    """IMPSY's (and EMPI's) input columns, dt first; a 3-D file could as well be RoboJam's x, y, dt: CLIError."""
    if dimension == DIMENSION:
        fail(
            f"{path}: a 3-D model's column order is not in the file; give --columns "
            "(x,y,dt for RoboJam's MicroJam models, dt,x_1,x_2 for IMPSY's)."
        )
    return ["dt", *(f"x_{i}" for i in range(1, dimension))]


def import_keras2(
    path: Path,
    out: Path,
    *,
    recurrent_activation: str | None = None,
    sizes: dict[str, int] | None = None,
    scale: float = spec.SCALE,
    columns: list[str] | None = None,
) -> Path:
    """Write the artifact of the Keras 2 MDRNN at `path` to `out`; CLIError when the file and the given
    activation, sizes or columns disagree, when a weights-only file is given no activation, or a 3-D one no columns."""
    model = read_keras2_h5(path)
    columns = columns or impsy_columns(path, model.sizes["dimension"])
    if len(columns) != model.sizes["dimension"]:
        fail(f"{path}: its input dimension is {model.sizes['dimension']}, but {len(columns)} columns were given.")
    for key, value in (sizes or {}).items():
        if value is not None and model.sizes[key] != value:
            fail(f"{path}: its {key} is {model.sizes[key]}, not {value} as given.")
    activation = model.recurrent_activation or recurrent_activation
    if activation is None:
        fail(
            f"{path}: a weights-only file does not record its LSTM's recurrent activation; give "
            "--recurrent-activation (hard_sigmoid: Keras 2 and TF 1 default; sigmoid: TF 2's tf.keras)."
        )
    if recurrent_activation is not None and recurrent_activation != activation:
        fail(f"{path}: its LSTMs use {activation}, not {recurrent_activation} as given.")
    metadata = spec.new_metadata(
        model.sizes["units"],
        model.sizes["layers"],
        model.sizes["mixtures"],
        dimension=model.sizes["dimension"],
        scale=float(scale),
        lstm_recurrent_activation=activation,
        columns=list(columns),
        keras_version=model.keras_version,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        imported_from={
            "file": path.name,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "kind": "keras2-h5-model" if model.full_model else "keras2-h5-weights",
        },
    )
    return spec.write(out, metadata, model.arrays)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.import_keras2", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a Keras 2 .h5 file: a full model or weights only")
    parser.add_argument("--out", type=Path, required=True, help="where to write the .npz artifact")
    parser.add_argument("--recurrent-activation", choices=spec.RECURRENT_ACTIVATIONS, help="the LSTMs' gates")
    parser.add_argument("--scale", type=float, default=spec.SCALE, help="input scale the model was trained with")
    parser.add_argument(
        "--columns",
        type=lambda text: [name.strip() for name in text.split(",")],
        help="the input columns in order, comma-separated (default IMPSY's dt,x_1,...; required for 3-D models)",
    )
    for key in SIZE_FLAGS:
        parser.add_argument(f"--{key}", type=int, help=f"expected {key} (checked against the file)")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        fail(f"model file not found: {args.model}.")
    if args.out.suffix != ".npz":
        fail(f"--out must end in .npz, got {args.out}.")
    out = import_keras2(
        args.model,
        args.out,
        recurrent_activation=args.recurrent_activation,
        sizes={key: getattr(args, key) for key in SIZE_FLAGS},
        scale=args.scale,
        columns=args.columns,
    )
    loaded = spec.load(out)  # what every reader will check
    print(
        f"wrote {out}: dimension {loaded.dimension}, {loaded.layers}x{loaded.units}, {loaded.mixtures} mixtures, "
        f"{loaded.recurrent_activation} gates, columns {', '.join(loaded.columns)}"
    )
    return 0


if __name__ == "__main__":
    cli_main(main)
