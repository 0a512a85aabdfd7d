"""The weights-artifact contract (robojam_format.artifact): every invalid file is refused in one sentence."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from devtools.random_weights import random_arrays, random_metadata, write_artifact, write_random_artifact
from robojam_format.artifact import ArtifactError, load
from service.engine import Engine

HARD = {"lstm_recurrent_activation": "hard_sigmoid"}


def corrupt(tmp_path, metadata_changes=None, drop=None, replace=None, add=None) -> Path:
    metadata = random_metadata(16, 2, 3)
    metadata.update(metadata_changes or {})
    for key in [k for k, v in metadata.items() if v is ...]:
        del metadata[key]
    arrays = random_arrays(16, 2, 3)
    if drop:
        del arrays[drop]
    arrays.update(replace or {})
    arrays.update(add or {})
    return write_artifact(tmp_path / "bad.npz", metadata, arrays)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: corrupt(p, {"format": "keras"}), "format is 'keras'"),
        (lambda p: corrupt(p, {"format_version": 2}), "format_version 2 is not supported"),
        (lambda p: corrupt(p, {"format_version": ...}), "format_version None"),
        (lambda p: corrupt(p, {"units": 0}), "'units' must be a positive integer"),
        (lambda p: corrupt(p, {"layers": "2"}), "'layers' must be a positive integer"),
        (lambda p: corrupt(p, {"dimension": 2}), "dimension is 2, expected 3"),
        (lambda p: corrupt(p, {"scale": -1}), "'scale' must be a positive finite number"),
        (lambda p: corrupt(p, {"lstm_activation": "relu"}), "'lstm_activation' is 'relu'"),
        (lambda p: corrupt(p, {"lstm_gate_order": "icfo"}), "'lstm_gate_order'"),
        (
            lambda p: corrupt(p, {"lstm_recurrent_activation": "keras3_hard_sigmoid"}),
            "'lstm_recurrent_activation' is 'keras3_hard_sigmoid', expected one of ('sigmoid', 'hard_sigmoid')",
        ),
        (lambda p: corrupt(p, drop="lstm_1_recurrent_kernel"), "missing arrays lstm_1_recurrent_kernel"),
        (lambda p: corrupt(p, drop="mdn_pi_bias"), "missing arrays mdn_pi_bias"),
        (lambda p: corrupt(p, {"units": 32}), "'lstm_0_kernel' has shape (3, 64), expected (3, 128)"),
        (lambda p: corrupt(p, {"layers": 1}), "unexpected arrays lstm_1_bias"),
        (lambda p: corrupt(p, replace={"mdn_mus_bias": np.zeros(8, np.float32)}), "'mdn_mus_bias' has shape"),
        (lambda p: corrupt(p, replace={"lstm_0_bias": np.zeros(64)}), "dtype float64, expected float32"),
        (lambda p: corrupt(p, replace={"mdn_pi_bias": np.full(3, np.inf, np.float32)}), "NaN or infinite"),
        (lambda p: corrupt(p, add={"extra": np.zeros(1, np.float32)}), "unexpected arrays extra"),
    ],
)
def test_invalid_artifacts_are_rejected_with_one_clear_sentence(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ArtifactError) as err:
        Engine.load(path)
    text = str(err.value)
    assert message in text and str(path) in text
    assert "\n" not in text and text.endswith(".")


def test_container_errors_are_artifact_errors(tmp_path):
    text_file = tmp_path / "notes.npz"
    text_file.write_text("these are not weights")
    npy = tmp_path / "array.npz"
    with npy.open("wb") as f:
        np.save(f, np.zeros(3, np.float32))
    pickled = tmp_path / "pickled.npz"
    with pickled.open("wb") as f:
        np.savez(f, metadata=np.array([{"format": "robojam-mdrnn-weights"}], dtype=object))
    no_meta = tmp_path / "no_meta.npz"
    with no_meta.open("wb") as f:
        np.savez(f, **random_arrays(8, 1, 2))
    bad_json = tmp_path / "bad_json.npz"
    with bad_json.open("wb") as f:
        np.savez(f, metadata=np.array("{not json"), **random_arrays(8, 1, 2))
    cases = {
        tmp_path / "absent.npz": "not found",
        text_file: "not an .npz archive (not a zip file)",
        npy: "is a single .npy array, not an .npz archive",
        pickled: "not a valid .npz archive",
        no_meta: "missing the 'metadata' entry",
        bad_json: "'metadata' is not valid JSON",
    }
    for path, message in cases.items():
        with pytest.raises(ArtifactError, match=re.escape(message)):
            Engine.load(path)
    assert issubclass(ArtifactError, ValueError)


def test_helper_artifact_round_trips_through_the_loader(tmp_path):
    path = write_random_artifact(tmp_path / "w.npz", units=24, layers=3, mixtures=4, val_nll=-1.5)
    artifact = load(path)
    assert (artifact.units, artifact.layers, artifact.mixtures, artifact.metadata["val_nll"]) == (24, 3, 4, -1.5)
    assert json.loads(json.dumps(Engine.load(path).metadata)) == artifact.metadata


def test_the_recurrent_activation_is_a_field_and_a_file_without_it_means_sigmoid(tmp_path):
    hard = load(write_random_artifact(tmp_path / "hard.npz", units=8, layers=1, mixtures=2, **HARD))
    assert hard.recurrent_activation == "hard_sigmoid" and Engine(hard).recurrent_activation == "hard_sigmoid"
    old = corrupt(tmp_path, {"lstm_recurrent_activation": ...})  # written before the field was a choice
    assert "lstm_recurrent_activation" not in load(old).metadata
    assert load(old).recurrent_activation == "sigmoid" and Engine.load(old).recurrent_activation == "sigmoid"


def test_any_input_dimension_loads_through_the_contract_but_the_service_refuses_it_in_one_line(tmp_path):
    path = write_random_artifact(tmp_path / "dim9.npz", units=16, layers=2, mixtures=5, dimension=9)
    artifact = load(path)
    assert artifact.dimension == 9 and artifact.arrays["lstm_0_kernel"].shape == (9, 64)
    engine = Engine(artifact)  # conformance tests and benchmarks run any dimension
    assert engine.mdn_outputs(np.ones((4, 9), np.float32)).shape == (4, 2 * 5 * 9 + 5)
    with pytest.raises(ValueError, match=r"sampling needs a 3-D \[x, y, dt\] model; this one's dimension is 9"):
        engine.continue_performance(np.ones((4, 9), np.float32), rng=np.random.default_rng(0))
    with pytest.raises(ArtifactError) as err:
        Engine.load(path)  # the service's loader
    text = str(err.value)
    assert "dimension is 9, expected 3 (x, y, dt)" in text and str(path) in text
    assert "\n" not in text and text.endswith(".")


def test_the_input_columns_are_a_field_and_the_service_serves_only_microjams_order(tmp_path):
    shipped = load(write_random_artifact(tmp_path / "old.npz", units=8, layers=1, mixtures=2))
    assert "columns" not in shipped.metadata and shipped.columns == ("x", "y", "dt")  # 3-D without the key: MicroJam's
    dim9 = write_random_artifact(tmp_path / "dim9.npz", units=8, layers=1, mixtures=2, dimension=9)
    assert load(dim9).columns is None  # not recorded
    named = write_random_artifact(tmp_path / "named.npz", units=8, layers=1, mixtures=2, columns=["x", "y", "dt"])
    assert Engine.load(named).metadata["columns"] == ["x", "y", "dt"]
    impsy = write_random_artifact(tmp_path / "impsy.npz", units=8, layers=1, mixtures=2, columns=["dt", "x_1", "x_2"])
    assert load(impsy).columns == ("dt", "x_1", "x_2")  # other tools run it
    with pytest.raises(ArtifactError) as err:
        Engine.load(impsy)  # the service's loader
    text = str(err.value)
    assert "its input columns are dt, x_1, x_2, expected x, y, dt (MicroJam's)." in text and "\n" not in text
    for wrong in (["x", "y"], ["x", "x", "dt"], "x,y,dt", ["x", "", "dt"]):
        with pytest.raises(ArtifactError, match="'columns' must name the 3 input columns once each"):
            load(corrupt(tmp_path, {"columns": wrong}))
