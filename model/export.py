"""Export a trained Keras MDRNN to the framework-free weights artifact (model/ARTIFACT.md), and back.

CLI: python -m model.export runs/NAME/best.keras --out model/weights/NAME.npz
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from model.cli import cli_main, fail

FORMAT = "robojam-mdrnn-weights"
FORMAT_VERSION = 1
SIGMA_EPSILON = 1e-7
MDN_PARTS = ("mdn_mus", "mdn_sigmas", "mdn_pi")


def _keras_arrays(model) -> dict[str, np.ndarray]:
    import keras

    arrays: dict[str, np.ndarray] = {}
    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    for i, layer in enumerate(lstms):
        kernel, recurrent, bias = (np.asarray(w, dtype=np.float32) for w in layer.get_weights())
        arrays[f"lstm_{i}_kernel"] = kernel
        arrays[f"lstm_{i}_recurrent_kernel"] = recurrent
        arrays[f"lstm_{i}_bias"] = bias
    head = model.get_layer("mdn").layer
    for part in MDN_PARTS:
        kernel, bias = (np.asarray(w, dtype=np.float32) for w in getattr(head, part).get_weights())
        arrays[f"{part}_kernel"] = kernel
        arrays[f"{part}_bias"] = bias
    return arrays


def export_artifact(model, path, extra_metadata: dict | None = None) -> Path:
    """Write `model`'s weights and metadata as a format-1 artifact at `path`."""
    import keras

    from model.mdrnn import DIMENSION, SCALE, architecture

    arch = architecture(model)
    lstm = model.get_layer("lstm_0")
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dimension": DIMENSION,
        **arch,
        "scale": SCALE,
        "lstm_gate_order": "ifco",
        "lstm_activation": keras.activations.serialize(lstm.activation),
        "lstm_recurrent_activation": keras.activations.serialize(lstm.recurrent_activation),
        "mdn_sigma_activation": "elu_plus_one_plus_epsilon",
        "mdn_sigma_epsilon": SIGMA_EPSILON,
        "data_sha256": None,
        "val_nll": None,
        "train_nll": None,
        "keras_version": keras.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    metadata.update(extra_metadata or {})
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, metadata=np.array(json.dumps(metadata, sort_keys=True)), **_keras_arrays(model))
    tmp.replace(out)
    return out


def read_artifact(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, arrays) from an artifact file; no validation beyond the format tag (the service validates)."""
    with np.load(path, allow_pickle=False) as z:
        metadata = json.loads(str(z["metadata"]))
        arrays = {k: z[k] for k in z.files if k != "metadata"}
    if metadata.get("format") != FORMAT or metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a {FORMAT} v{FORMAT_VERSION} artifact.")
    return metadata, arrays


def model_from_artifact(path):
    """A fresh Keras model built from the artifact's metadata and loaded with its weights."""
    from model.mdrnn import build_model

    metadata, arrays = read_artifact(path)
    model = build_model(metadata["units"], metadata["layers"], metadata["mixtures"])
    for i in range(metadata["layers"]):
        model.get_layer(f"lstm_{i}").set_weights(
            [arrays[f"lstm_{i}_kernel"], arrays[f"lstm_{i}_recurrent_kernel"], arrays[f"lstm_{i}_bias"]]
        )
    head = model.get_layer("mdn").layer
    for part in MDN_PARTS:
        getattr(head, part).set_weights([arrays[f"{part}_kernel"], arrays[f"{part}_bias"]])
    return model


def _training_metadata(checkpoint: Path) -> dict:
    """The run's summary (written by model.train next to its checkpoint), if there is one."""
    summary = checkpoint.parent / "summary.json"
    if not summary.is_file():
        return {}
    run = json.loads(summary.read_text(encoding="utf-8"))
    return {
        "data_sha256": run.get("data_sha256"),
        "val_nll": run.get("best_val_nll"),
        "train_nll": run.get("train_nll_at_best"),
        "training": run.get("settings", {}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.export", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a .keras checkpoint written by model.train")
    parser.add_argument("--out", type=Path, required=True, help="where to write the .npz artifact")
    args = parser.parse_args(argv)
    if not args.checkpoint.is_file():
        fail(f"checkpoint not found: {args.checkpoint}.")
    if args.checkpoint.suffix != ".keras":
        fail(f"{args.checkpoint} is not a .keras checkpoint.")
    if args.out.suffix != ".npz":
        fail(f"--out must end in .npz, got {args.out}.")

    from model.mdrnn import load_keras_model

    try:
        model = load_keras_model(args.checkpoint)
    except Exception as exc:  # keras raises many types for a bad file; the user needs one sentence
        fail(f"could not load {args.checkpoint} as a RoboJam Keras model ({type(exc).__name__}).")
    out = export_artifact(model, args.out, _training_metadata(args.checkpoint))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    cli_main(main)
