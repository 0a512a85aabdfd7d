"""Export a trained Keras MDRNN to the framework-free weights artifact (model/ARTIFACT.md), and back.

The format itself (keys, shapes, metadata, container) is `robojam_format.artifact`, shared with the service.

CLI: python -m model.export runs/NAME/best.keras --out model/weights/NAME.npz
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from model.cli import cli_main, fail
from robojam_format import artifact as spec


def _keras_arrays(model) -> dict[str, np.ndarray]:
    import keras

    arrays: dict[str, np.ndarray] = {}
    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    for i, layer in enumerate(lstms):
        for key, weight in zip(spec.lstm_keys(i), layer.get_weights(), strict=True):
            arrays[key] = np.asarray(weight, dtype=np.float32)
    head = model.get_layer("mdn").layer
    for part in spec.MDN_PARTS:
        for key, weight in zip(spec.mdn_keys(part), getattr(head, part).get_weights(), strict=True):
            arrays[key] = np.asarray(weight, dtype=np.float32)
    return arrays


def export_artifact(model, path, extra_metadata: dict | None = None) -> Path:
    """Write `model`'s weights and metadata as an artifact at `path` (robojam_format.artifact's format)."""
    import keras

    from model.mdrnn import architecture, recurrent_activation_name

    arch = architecture(model)
    lstm = model.get_layer("lstm_0")
    dimension = model.get_layer("mdn").layer.output_dim
    # The corpus pipeline (model/data.py) feeds MicroJam's x, y, dt rows: recorded, so no reader has to assume it.
    columns = {spec.COLUMNS: list(spec.MICROJAM_COLUMNS)} if dimension == spec.DIMENSION else {}
    metadata = spec.new_metadata(
        arch["units"],
        arch["layers"],
        arch["mixtures"],
        # What the model really computes, so a reader refuses a model its engine would mis-run.
        dimension=dimension,
        lstm_activation=keras.activations.serialize(lstm.activation),
        lstm_recurrent_activation=recurrent_activation_name(lstm),
        **columns,
        keras_version=keras.__version__,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra_metadata or {}),
    )
    return spec.write(path, metadata, _keras_arrays(model))


def read_artifact(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, arrays) of a valid artifact file, checked as every reader checks it (spec.ArtifactError)."""
    loaded = spec.load(path)
    return loaded.metadata, loaded.arrays


def model_from_artifact(path):
    """A fresh Keras model built from the artifact's metadata (sizes, input dimension, gate activation) and loaded
    with its weights."""
    from model.mdrnn import build_model

    metadata, arrays = read_artifact(path)
    model = build_model(
        metadata["units"],
        metadata["layers"],
        metadata["mixtures"],
        dimension=metadata["dimension"],
        recurrent_activation=spec.recurrent_activation(metadata),
    )
    for i in range(metadata["layers"]):
        model.get_layer(f"lstm_{i}").set_weights([arrays[key] for key in spec.lstm_keys(i)])
    head = model.get_layer("mdn").layer
    for part in spec.MDN_PARTS:
        getattr(head, part).set_weights([arrays[key] for key in spec.mdn_keys(part)])
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
        "run": checkpoint.parent.name,  # runs/NAME: GET /api/model reports it
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
