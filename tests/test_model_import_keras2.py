"""python -m model.import_keras2: Keras 2 .h5 MDRNNs (full models and weights only) become artifacts, and every file
or flag that does not fit is refused in one sentence. The numbers themselves are held to Keras 3 in
tests/test_engine_impsy.py."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest
from support.impsy import DIM2, DIM9, impsy_file

from devtools.random_weights import random_arrays
from model.cli import CLIError
from model.import_keras2 import main, read_keras2_h5
from robojam_format import artifact as spec
from service.engine import Engine


def test_a_full_model_records_its_gate_activation_sizes_and_source(data_dir, tmp_path, capsys):
    h5 = impsy_file(data_dir, DIM2)
    out = tmp_path / "dim2.npz"
    assert main([str(h5), "--out", str(out), "--units", "32", "--layers", "2"]) == 0
    assert "dimension 2, 2x32, 5 mixtures, hard_sigmoid gates" in capsys.readouterr().out
    artifact = spec.load(out)
    assert (artifact.dimension, artifact.units, artifact.layers, artifact.mixtures) == (2, 32, 2, 5)
    assert artifact.recurrent_activation == "hard_sigmoid" and artifact.scale == 10.0
    assert artifact.metadata["keras_version"] == "2.2.5"
    source = artifact.metadata["imported_from"]
    assert source["kind"] == "keras2-h5-model" and source["sha256"] == hashlib.sha256(h5.read_bytes()).hexdigest()
    with h5py.File(h5, "r") as f:  # the file's own arrays, in the artifact's keys
        np.testing.assert_array_equal(
            artifact.arrays["lstm_1_recurrent_kernel"], f["model_weights/lstm1/lstm1/recurrent_kernel:0"]
        )
        np.testing.assert_array_equal(artifact.arrays["mdn_sigmas_bias"], f["model_weights/td_mdn/td_mdn/bias_1:0"])


def test_a_weights_only_file_needs_its_gate_activation(data_dir, tmp_path):
    h5 = impsy_file(data_dir, DIM9)
    assert read_keras2_h5(h5).recurrent_activation is None and not read_keras2_h5(h5).full_model
    with pytest.raises(CLIError, match="weights-only file does not record its LSTM's recurrent activation"):
        main([str(h5), "--out", str(tmp_path / "w.npz")])
    assert not (tmp_path / "w.npz").exists()
    assert (
        main([str(h5), "--out", str(tmp_path / "w.npz"), "--recurrent-activation", "sigmoid", "--dimension", "9"]) == 0
    )
    artifact = spec.load(tmp_path / "w.npz")
    assert (artifact.dimension, artifact.units, artifact.recurrent_activation) == (9, 64, "sigmoid")
    assert artifact.metadata["imported_from"]["kind"] == "keras2-h5-weights"


@pytest.mark.parametrize(
    ("name", "flags", "message"),
    [
        (DIM2, ["--recurrent-activation", "sigmoid"], "its LSTMs use hard_sigmoid, not sigmoid as given."),
        (DIM2, ["--units", "64"], "its units is 32, not 64 as given."),
        (DIM9, ["--recurrent-activation", "sigmoid", "--mixtures", "3"], "its mixtures is 5, not 3 as given."),
    ],
)
def test_flags_that_contradict_the_file_are_refused(data_dir, tmp_path, name, flags, message):
    with pytest.raises(CLIError, match=message) as err:
        main([str(impsy_file(data_dir, name)), "--out", str(tmp_path / "w.npz"), *flags])
    assert "\n" not in str(err.value)


def test_files_that_are_not_keras2_mdrnns_are_refused(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    dense = tmp_path / "dense.h5"
    with h5py.File(dense, "w") as f:
        f.attrs["layer_names"] = [b"dense", b"mdn"]
        f.create_group("dense").attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
        f["dense/dense/kernel:0"], f["dense/dense/bias:0"] = np.ones((3, 8), np.float32), np.ones(8, np.float32)
        f.create_group("mdn").attrs["weight_names"] = [b"mdn/bias:0"]
        f["mdn/mdn/bias:0"] = np.ones(5, np.float32)
    cases = {text: "not a readable HDF5 file", dense: "layer 'dense' is not an LSTM"}
    for path, message in cases.items():
        with pytest.raises(CLIError, match=message):
            main([str(path), "--out", str(tmp_path / "w.npz"), "--recurrent-activation", "sigmoid"])


def keras2_weights_file(path, arrays: dict[str, np.ndarray]):
    """A Keras 2 `save_weights` file of one LSTM layer and an MDN holding `arrays` (the artifact's keys)."""
    layers = {"lstm0": spec.lstm_keys(0), "mdn": [k for part in spec.MDN_PARTS for k in spec.mdn_keys(part)]}
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode() for name in layers]
        for name, keys in layers.items():
            f.create_group(name).attrs["weight_names"] = [f"{name}/{key}:0".encode() for key in keys]
            for key in keys:
                f[f"{name}/{name}/{key}:0"] = arrays[key]
    return path


def test_the_input_columns_are_recorded_and_a_3d_model_must_name_them(data_dir, tmp_path):
    assert main([str(impsy_file(data_dir, DIM2)), "--out", str(tmp_path / "dim2.npz")]) == 0
    assert spec.load(tmp_path / "dim2.npz").metadata["columns"] == ["dt", "x_1"]  # IMPSY's order
    h5 = keras2_weights_file(tmp_path / "three.h5", random_arrays(8, 1, 2))
    flags = ["--recurrent-activation", "sigmoid"]
    with pytest.raises(CLIError, match="a 3-D model's column order is not in the file; give --columns"):
        main([str(h5), "--out", str(tmp_path / "w.npz"), *flags])
    with pytest.raises(CLIError, match="its input dimension is 3, but 2 columns were given"):
        main([str(h5), "--out", str(tmp_path / "w.npz"), *flags, "--columns", "x,y"])
    assert not (tmp_path / "w.npz").exists()
    assert main([str(h5), "--out", str(tmp_path / "robojam.npz"), *flags, "--columns", "x, y, dt"]) == 0
    assert Engine.load(tmp_path / "robojam.npz").metadata["columns"] == ["x", "y", "dt"]  # servable
    assert main([str(h5), "--out", str(tmp_path / "impsy.npz"), *flags, "--columns", "dt,x_1,x_2"]) == 0
    assert spec.load(tmp_path / "impsy.npz").columns == ("dt", "x_1", "x_2")
    with pytest.raises(spec.ArtifactError, match="its input columns are dt, x_1, x_2, expected x, y, dt"):
        Engine.load(tmp_path / "impsy.npz")  # the service's loader refuses IMPSY's order
