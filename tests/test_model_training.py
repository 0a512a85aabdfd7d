"""The Keras MDRNN: its size, that it learns on real data, the training and export CLIs, and their errors."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from model.data import load_corpus, make_windows
from model.defaults import SCALE
from model.export import export_artifact, model_from_artifact, read_artifact
from model.mdrnn import build_model, compile_model
from robojam_format.layout import REPO_ROOT


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def test_default_model_has_robojams_parameter_count():
    assert build_model().count_params() == 3_173_923


@pytest.mark.parametrize(("units", "layers", "mixtures"), [(64, 1, 3), (32, 3, 2)])
def test_sizes_are_configurable(units, layers, mixtures):
    model = build_model(units, layers, mixtures)
    lstm = 4 * units * (3 + units + 1) + (layers - 1) * 4 * units * (2 * units + 1)
    head = units * (2 * mixtures * 3 + mixtures) + 2 * mixtures * 3 + mixtures
    assert model.count_params() == lstm + head
    assert model.output_shape == (None, None, 2 * mixtures * 3 + mixtures)


def test_a_few_training_steps_on_real_data_lower_the_loss(data_dir):
    keras.utils.set_random_seed(1)
    corpus = load_corpus(data_dir / "TinyPerformanceCorpus.h5")
    x, y = make_windows(corpus.performances[:60], seq_len=50, step=25)
    x, y = x[:128] * SCALE, y[:128] * SCALE
    model = compile_model(build_model(64, 2, 5), 5, learning_rate=3e-3)
    before = model.evaluate(x, y, verbose=0)
    for _ in range(3):
        for start in range(0, len(x), 32):
            model.train_on_batch(x[start : start + 32], y[start : start + 32])
    after = model.evaluate(x, y, verbose=0)
    assert np.isfinite(after)
    assert after < before - 1.0, (before, after)


def _perturbed(model, seed=0):
    """Random non-zero values everywhere (biases included) so export is checked on every array."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.08, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


@pytest.mark.parametrize(("units", "layers", "mixtures"), [(512, 2, 5), (48, 3, 2)])
def test_export_then_fresh_model_reproduces_outputs_on_300_steps(tmp_path, units, layers, mixtures):
    original = _perturbed(build_model(units, layers, mixtures))
    path = export_artifact(original, tmp_path / "w.npz", {"val_nll": 1.5})
    metadata, arrays = read_artifact(path)
    assert (metadata["units"], metadata["layers"], metadata["mixtures"]) == (units, layers, mixtures)
    assert metadata["scale"] == 10.0 and metadata["format_version"] == 1 and metadata["val_nll"] == 1.5
    assert metadata["columns"] == ["x", "y", "dt"]  # what the corpus pipeline feeds a 3-D model
    assert all(a.dtype == np.float32 for a in arrays.values())
    fresh = model_from_artifact(path)
    x = (np.random.default_rng(3).random((1, 300, 3)) * SCALE).astype(np.float32)
    diff = np.abs(original(x).numpy() - fresh(x).numpy()).max()
    assert diff <= 1e-5, diff


def test_train_and_export_clis_end_to_end(tmp_path, data_dir):
    run = tmp_path / "run"
    done = run_cli(
        "model.train",
        "--data",
        str(data_dir),
        "--units",
        "16",
        "--layers",
        "1",
        "--mixtures",
        "2",
        "--epochs",
        "2",
        "--max-windows",
        "128",
        "--seq-len",
        "40",
        "--out",
        str(run),
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("best validation NLL: ")
    summary = json.loads((run / "summary.json").read_text())
    assert f"{summary['best_val_nll']:.4f}" in last
    assert summary["epochs_run"] == 2 and summary["train_windows"] == 128
    assert summary["settings"]["seq_len"] == 40 and summary["data_sha256"]
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((run / "log.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    assert (run / "best.keras").is_file()

    out = tmp_path / "w.npz"
    done = run_cli("model.export", str(run / "best.keras"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    metadata, _ = read_artifact(out)
    assert metadata["val_nll"] == summary["best_val_nll"]
    assert metadata["data_sha256"] == summary["data_sha256"]
    assert metadata["training"]["max_windows"] == 128
    reloaded = model_from_artifact(out)
    assert reloaded.count_params() == summary["parameters"]


def _nan_corpus(d):
    np.savez(d / "nan.npz", events=np.full((4, 3), np.nan, np.float32), offsets=np.array([0, 4]))
    return d / "nan.npz"


def _empty_csv_dir(d):
    (d / "p.csv").write_text("time,x,y,z,moving\n")
    return d


@pytest.mark.parametrize(
    ("make_data", "expected"),
    [
        (lambda d: d / "nope.h5", "corpus not found"),
        (lambda d: (d / "c.json").write_text("{}") and d / "c.json", "unsupported corpus file"),
        (_nan_corpus, "no usable touch events"),
        (_empty_csv_dir, "no usable touch events"),
    ],
)
def test_train_cli_bad_input_is_one_line_error(tmp_path, make_data, expected):
    done = run_cli("model.train", "--data", str(make_data(tmp_path)), "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], done.stderr


@pytest.mark.parametrize(
    ("make_checkpoint", "expected"),
    [
        (lambda d: d / "missing.keras", "checkpoint not found"),
        (lambda d: (d / "m.h5").write_text("x") and d / "m.h5", "not a .keras checkpoint"),
        (lambda d: (d / "m.keras").write_bytes(b"garbage") and d / "m.keras", "could not load"),
    ],
)
def test_export_cli_bad_input_is_one_line_error(tmp_path, make_checkpoint, expected):
    done = run_cli("model.export", str(make_checkpoint(tmp_path)), "--out", str(tmp_path / "w.npz"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], done.stderr
