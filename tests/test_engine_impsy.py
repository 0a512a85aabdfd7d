"""The engine speaks IMPSY: its trained Keras 2 models, imported with model.import_keras2, give Keras 3's per-step MDN
outputs, and IMPSY's model conformance vectors (spec 1.0.0) come out of the engine and its Sampler.

The Keras 3 side reads each .h5 with Keras' own weight loader into a model built with the file's gate activation
(Keras 2's hard_sigmoid for the dim-2 model), so the importer's reading of the file is checked, not reused.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from support.impsy import DIM2, DIM9, VECTORS, control_walk, impsy_file, vector_model_arrays

from robojam_format import artifact as spec
from service.engine import Engine, Sampler

TOLERANCE = 1e-5  # per output, relative above 1: the dim-9 model's sigmas reach ~140, where a float32 step is 1.5e-5
MIXUP = 0.1  # the wrong gate activation moves the outputs by far more than this (measured: ~2)
# name: (file, the activation given on import (None: read from the file), the one its Keras twin is built with)
MODELS = {"dim2-hard_sigmoid": (DIM2, None, "hard_sigmoid"), "dim9-sigmoid": (DIM9, "sigmoid", "sigmoid")}


def worst_error(mine: np.ndarray, keras: np.ndarray) -> float:
    return float((np.abs(mine - keras) / np.maximum(1.0, np.abs(keras))).max())


@pytest.fixture(scope="module", params=list(MODELS))
def impsy_model(request, data_dir, tmp_path_factory):
    """(engine, Keras 3 model, artifact path) for one of IMPSY's trained models."""
    pytest.importorskip("keras")
    from model.import_keras2 import import_keras2
    from model.mdrnn import build_model

    name, given, activation = MODELS[request.param]
    h5 = impsy_file(data_dir, name)
    path = import_keras2(h5, tmp_path_factory.mktemp("impsy") / "w.npz", recurrent_activation=given)
    artifact = spec.load(path)
    assert artifact.recurrent_activation == activation
    model = build_model(
        artifact.units,
        artifact.layers,
        artifact.mixtures,
        dimension=artifact.dimension,
        recurrent_activation=activation,
    )
    model.load_weights(h5)  # Keras' own reader of Keras 2 HDF5 (by layer order, as IMPSY loads it)
    return Engine(artifact), model, path


def test_engine_equals_keras3_on_impsys_trained_models_across_a_state_reset(impsy_model):
    engine, model, _ = impsy_model
    before, after = control_walk(250, engine.dimension, seed=1), control_walk(100, engine.dimension, seed=2)
    for scaled in (before, after):  # every call starts from zero state: `after` runs after a reset
        expected = np.asarray(model(scaled[None]))[0]
        assert expected.shape == (len(scaled), engine.output_size)
        assert worst_error(engine.mdn_outputs(scaled), expected) <= TOLERANCE
        assert worst_error(engine.mdn_outputs(scaled, stepwise=True), expected) <= TOLERANCE


def test_a_sigmoid_hard_sigmoid_mix_up_is_caught(impsy_model, tmp_path):
    """The same weights run with the other gate activation miss Keras by far more than the tolerance."""
    engine, model, path = impsy_model
    metadata, arrays = spec.read(path)
    wrong = "sigmoid" if engine.recurrent_activation == "hard_sigmoid" else "hard_sigmoid"
    mixed_up = Engine(
        spec.load(spec.write(tmp_path / "wrong.npz", {**metadata, spec.RECURRENT_ACTIVATION: wrong}, arrays))
    )
    scaled = control_walk(100, engine.dimension, seed=3)
    expected = np.asarray(model(scaled[None]))[0]
    assert worst_error(engine.mdn_outputs(scaled), expected) <= TOLERANCE
    assert np.abs(mixed_up.mdn_outputs(scaled) - expected).max() > MIXUP


def test_impsys_model_conformance_vectors(data_dir, tmp_path):
    """Per-step MDN outputs, mixture weights at pi_temp and the mixtures chosen for fixed draws, then a reset."""
    vectors = json.loads(impsy_file(data_dir, VECTORS).read_text(encoding="utf-8"))
    model = vectors["model"]
    metadata = spec.new_metadata(
        model["units"],
        model["layers"],
        model["mixtures"],
        dimension=model["dimension"],
        lstm_recurrent_activation=model["recurrent_activation"],
    )
    engine = Engine(spec.load(spec.write(tmp_path / "vectors.npz", metadata, vector_model_arrays(model))))
    runs, current = [], []
    for step in vectors["steps"]:
        if step.get("reset"):
            runs.append(current)
            current = []
        else:
            current.append(step)
    runs.append(current)
    assert [len(run) for run in runs] == [4, 2]
    md = engine.mixtures * engine.dimension
    for run in runs:
        scaled = np.array([step["input"] for step in run], dtype=np.float32) * np.float32(engine.scale)
        for outputs in (engine.mdn_outputs(scaled), engine.mdn_outputs(scaled, stepwise=True)):
            for step, output in zip(run, outputs, strict=True):
                expected = vectors["steps"][step.get("same_as_step", vectors["steps"].index(step))]
                assert np.abs(output - np.array(expected["mdn_output"])).max() <= TOLERANCE
                logits = output[2 * md :].astype(np.float64) / vectors["pi_temp"]
                pi = np.exp(logits - logits.max())
                assert np.abs(pi / pi.sum() - np.array(expected["pi"])).max() <= TOLERANCE
                sampler = Sampler(
                    output, engine.mixtures, engine.dimension, vectors["pi_temp"], engine.sigma_epsilon, engine.scale
                )
                assert [sampler.choose(u) for u in vectors["uniform_draws"]] == expected["mixture_for_draw"]
