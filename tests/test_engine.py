"""The NumPy engine: equal to the Keras model, RoboJam's sampling, artifact validation, safety between calls.

The Keras comparisons build the real model (model.mdrnn), export it with model.export and load the file into
the engine, so they also hold the export format and the engine's reading of it to the same definition.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from artifacts import random_arrays, random_metadata, write_artifact, write_random_artifact

from robojam_format.layout import REPO_ROOT
from service.artifact import DEFAULT_WEIGHTS, ArtifactError, load_artifact, resolve_path
from service.engine import MAX_STEPS, MIN_DT, Engine

TOLERANCE = 1e-5


def performance(n: int, seed: int = 0) -> np.ndarray:
    """A plausible cleaned performance: (n, 3) float32 [x, y, dt], dt about 50 ms."""
    rng = np.random.default_rng(seed)
    dt = np.clip(rng.exponential(0.05, n), 0.0, 5.0)
    dt[0] = 0.0
    return np.column_stack([rng.random(n), rng.random(n), dt]).astype(np.float32)


# ---- equality with Keras ---------------------------------------------------------------------------------------


def keras_and_engine(tmp_path, units: int, layers: int, mixtures: int):
    keras = pytest.importorskip("keras")
    from model.export import export_artifact
    from model.mdrnn import build_model

    keras.utils.set_random_seed(units + layers + mixtures)
    model = build_model(units=units, layers=layers, mixtures=mixtures)
    # Random biases too (Keras initialises them to 0/1), so a misplaced bias or gate cannot hide.
    rng = np.random.default_rng(1)
    for weight in model.weights:
        if weight.path.endswith("bias"):
            weight.assign(rng.uniform(-0.5, 0.5, weight.shape).astype(np.float32))
    path = export_artifact(model, tmp_path / "weights.npz", {"training": {"note": "equality test"}})
    return model, Engine.load(path)


@pytest.mark.parametrize(
    ("units", "layers", "mixtures", "steps"),
    [(512, 2, 5, 300), (32, 3, 2, 300), (16, 1, 3, 1100)],
    ids=["default-2x512-m5", "3x32-m2", "1x16-m3-crosses-chunks"],
)
def test_engine_equals_keras_on_a_long_sequence(tmp_path, units, layers, mixtures, steps):
    model, engine = keras_and_engine(tmp_path, units, layers, mixtures)
    scaled = performance(steps, seed=units) * 10.0
    expected = np.asarray(model(scaled[None]))[0]
    assert expected.shape == (steps, 2 * mixtures * 3 + mixtures)
    batch = engine.mdn_outputs(scaled)
    stepwise = engine.mdn_outputs(scaled, stepwise=True)
    assert batch.dtype == stepwise.dtype == np.float32
    assert np.abs(batch - expected).max() <= TOLERANCE
    assert np.abs(stepwise - expected).max() <= TOLERANCE
    assert engine.metadata["units"] == units and engine.metadata["layers"] == layers


# ---- RoboJam's sampling, on a model whose MDN output is known exactly ------------------------------------------


def fixed_mixture_artifact(tmp_path, *, x_means=(0.2, 0.8), dt_means=(0.1, 0.1), sigma_raw=1.0, pi=(0.0, 1.0)):
    """A 1 x 8 model whose head ignores the LSTM: every step's MDN output is exactly the head's bias."""
    arrays = random_arrays(8, 1, 2)
    for part in ("mus", "sigmas", "pi"):
        arrays[f"mdn_{part}_kernel"][:] = 0.0
    arrays["mdn_mus_bias"][:] = np.array([[x, 0.5, dt] for x, dt in zip(x_means, dt_means, strict=True)]).ravel() * 10
    arrays["mdn_sigmas_bias"][:] = sigma_raw
    arrays["mdn_pi_bias"][:] = pi
    return write_artifact(tmp_path / "fixed.npz", random_metadata(8, 1, 2), arrays)


@pytest.mark.parametrize(("temperature", "sigma_temperature"), [(1.5, 0.01), (0.5, 0.04)])
def test_samples_follow_the_tempered_mixture(tmp_path, temperature, sigma_temperature):
    engine = Engine.load(fixed_mixture_artifact(tmp_path))
    rows = np.concatenate(
        [
            engine.continue_performance(
                performance(20),
                seconds=1e6,
                temperature=temperature,
                sigma_temperature=sigma_temperature,
                rng=np.random.default_rng(seed),
            )
            for seed in range(4)
        ]
    )
    assert rows.shape == (4 * MAX_STEPS, 3)  # dt about 0.1 s never sums to 1e6 s: the step cap ends each call
    logits = np.array([0.0, 1.0]) / temperature
    p_second = np.exp(logits[1]) / np.exp(logits).sum()
    second = rows[:, 0] > 0.5
    assert abs(second.mean() - p_second) < 4 * np.sqrt(p_second * (1 - p_second) / len(rows))
    sigma = (1.0 + 1.0 + 1e-7) * np.sqrt(sigma_temperature) / 10.0  # elu(1) + 1 + eps, tempered, unscaled
    for component, mean in ((~second, 0.2), (second, 0.8)):
        xs = rows[component, 0]
        assert abs(xs.mean() - mean) < 4 * sigma / np.sqrt(len(xs))
        assert abs(xs.std() / sigma - 1.0) < 0.1
    assert abs(rows[:, 1].mean() - 0.5) < 4 * sigma / np.sqrt(len(rows))
    assert abs(rows[:, 2].std() / sigma - 1.0) < 0.1


def test_every_row_is_clipped_and_the_step_cap_holds(tmp_path):
    # Means far outside [0, 1] and a negative dt: clipping must fire on every row, and dt pinned at 1 ms means
    # 5 s can never be reached, so the 1000-step cap ends the continuation.
    engine = Engine.load(fixed_mixture_artifact(tmp_path, x_means=(-3.0, 4.0), dt_means=(-1.0, -1.0)))
    rows = engine.continue_performance(performance(10), seconds=5.0, rng=np.random.default_rng(0))
    assert rows.shape == (MAX_STEPS, 3) and rows.dtype == np.float32
    assert set(np.unique(rows[:, 0])) == {0.0, 1.0}
    assert np.all(rows[:, 2] == np.float32(MIN_DT))


# ---- generation contract on a random 2-layer model --------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return Engine.load(write_random_artifact(tmp_path_factory.mktemp("w") / "w.npz", units=64, layers=2))


@pytest.mark.parametrize("seconds", [0.5, 5.0, 10.0])
@pytest.mark.parametrize("n_events", [1, 100])
def test_continuation_is_constrained_and_lasts_the_requested_time(engine, seconds, n_events):
    for seed in range(5):
        events, rng = performance(n_events, seed), np.random.default_rng(seed)
        rows = engine.continue_performance(events, seconds=seconds, rng=rng)
        assert rows.dtype == np.float32 and rows.ndim == 2 and rows.shape[1] == 3 and 1 <= len(rows) <= MAX_STEPS
        assert np.isfinite(rows).all()
        assert rows[:, :2].min() >= 0.0 and rows[:, :2].max() <= 1.0
        assert rows[:, 2].min() >= np.float32(MIN_DT)
        total = rows[:, 2].astype(np.float64).sum()
        assert len(rows) == MAX_STEPS or seconds <= total <= seconds + rows[-1, 2] + 1e-9
        assert rows[:-1, 2].astype(np.float64).sum() < seconds  # it stopped at the first touch that reached it


def test_same_seed_same_reply_and_different_seeds_differ(engine):
    events = performance(50)
    a = engine.continue_performance(events, rng=np.random.default_rng(42))
    b = engine.continue_performance(events, rng=np.random.default_rng(42))
    c = engine.continue_performance(events, rng=np.random.default_rng(43))
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_conditioning_changes_the_continuation(engine):
    a = engine.continue_performance(performance(50, seed=1), rng=np.random.default_rng(0))
    b = engine.continue_performance(performance(50, seed=2), rng=np.random.default_rng(0))
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_concurrent_calls_equal_their_sequential_results(engine):
    jobs = [(performance(30 + 10 * i, seed=i), 100 + i) for i in range(8)]
    weights_before = [w.copy() for w in engine._stacked]
    sequential = [engine.continue_performance(ev, rng=np.random.default_rng(seed)) for ev, seed in jobs]
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        events, seed = jobs[i]
        barrier.wait()
        results[i] = [engine.continue_performance(events, rng=np.random.default_rng(seed)) for _ in range(3)]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for expected, got in zip(sequential, results, strict=True):
        assert all(np.array_equal(expected, g) for g in got)
    assert all(np.array_equal(a, b) for a, b in zip(weights_before, engine._stacked, strict=True))


def test_interleaved_generators_do_not_share_state(engine):
    # Two requests whose generators are drawn from alternately equal the same requests run alone.
    events = performance(40)
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(8)
    a1 = engine.continue_performance(events, rng=rng_a)
    b1 = engine.continue_performance(events, rng=rng_b)
    a2 = engine.continue_performance(events, rng=rng_a)
    b2 = engine.continue_performance(events, rng=rng_b)
    solo_a, solo_b = np.random.default_rng(7), np.random.default_rng(8)
    assert np.array_equal(a1, engine.continue_performance(events, rng=solo_a))
    assert np.array_equal(a2, engine.continue_performance(events, rng=solo_a))
    assert np.array_equal(b1, engine.continue_performance(events, rng=solo_b))
    assert np.array_equal(b2, engine.continue_performance(events, rng=solo_b))


def test_engine_weights_are_read_only(engine):
    for w in [*engine._stacked, *engine._biases, engine._head, engine._head_bias]:
        with pytest.raises(ValueError):
            w[...] = 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"events": np.zeros((0, 3), np.float32)}, "shape"),
        ({"events": np.zeros((5, 2), np.float32)}, "shape"),
        ({"events": np.array([[0.1, np.nan, 0.0]], np.float32)}, "finite"),
        ({"seconds": 0.0}, "seconds"),
        ({"seconds": float("inf")}, "seconds"),
        ({"temperature": -1.0}, "temperature"),
        ({"sigma_temperature": float("nan")}, "sigma_temperature"),
        ({"seconds": True}, "seconds"),
    ],
)
def test_bad_arguments_raise_value_error(engine, kwargs, message):
    call = {"events": performance(5), "rng": np.random.default_rng(0), **kwargs}
    events = call.pop("events")
    with pytest.raises(ValueError, match=message):
        engine.continue_performance(events, **call)


def test_extreme_but_finite_events_still_give_valid_rows(engine):
    rows = engine.continue_performance(np.full((5, 3), 1e37, np.float32), rng=np.random.default_rng(0))
    assert np.isfinite(rows).all() and rows[:, :2].min() >= 0 and rows[:, :2].max() <= 1
    assert rows[:, 2].min() >= np.float32(MIN_DT)
    with pytest.raises(ValueError, match="too large"):
        engine.continue_performance(np.full((5, 3), 1e38, np.float32), rng=np.random.default_rng(0))


def test_rng_must_be_a_generator(engine):
    with pytest.raises(TypeError, match="Generator"):
        engine.continue_performance(performance(5), rng=np.random.RandomState(0))


# ---- artifact validation ----------------------------------------------------------------------------------------


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


def test_artifact_path_resolution(tmp_path, monkeypatch):
    path = write_random_artifact(tmp_path / "env.npz", units=8, layers=1, mixtures=2)
    monkeypatch.setenv("ROBOJAM_WEIGHTS", str(path))
    assert resolve_path() == path
    assert Engine.load().metadata["units"] == 8
    explicit = write_random_artifact(tmp_path / "explicit.npz", units=12, layers=1, mixtures=2)
    assert Engine.load(explicit).metadata["units"] == 12
    monkeypatch.delenv("ROBOJAM_WEIGHTS")
    assert resolve_path() == DEFAULT_WEIGHTS == REPO_ROOT / "model" / "weights" / "robojam.npz"


def test_helper_artifact_round_trips_through_the_loader(tmp_path):
    path = write_random_artifact(tmp_path / "w.npz", units=24, layers=3, mixtures=4, val_nll=-1.5)
    artifact = load_artifact(path)
    assert (artifact.units, artifact.layers, artifact.mixtures, artifact.metadata["val_nll"]) == (24, 3, 4, -1.5)
    assert json.loads(json.dumps(Engine.load(path).metadata)) == artifact.metadata


# ---- service/ stays framework-free -----------------------------------------------------------------------------


def test_service_never_imports_tensorflow_or_keras():
    pattern = re.compile(r"^\s*(import|from)\s+(tensorflow|keras)", re.MULTILINE)
    offenders = [p.name for p in (REPO_ROOT / "service").rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
    code = (
        "import sys, numpy as np; from service.engine import Engine; import service.artifact; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
