"""The NumPy engine equals the Keras model it was exported from.

The comparisons build the real model (model.mdrnn), export it with model.export and load the file into the
engine, so they also hold the export format and the engine's reading of it to the same definition.
"""

from __future__ import annotations

import numpy as np
import pytest

from devtools.performances import typical_events
from robojam_format.artifact import ArtifactError, load
from service.engine import Engine

TOLERANCE = 1e-5


def keras_and_engine(tmp_path, units: int, layers: int, mixtures: int, **build):
    keras = pytest.importorskip("keras")
    from model.export import export_artifact
    from model.mdrnn import build_model

    keras.utils.set_random_seed(units + layers + mixtures)
    model = build_model(units=units, layers=layers, mixtures=mixtures, **build)
    # Random biases too (Keras initialises them to 0/1), so a misplaced bias or gate cannot hide.
    rng = np.random.default_rng(1)
    for weight in model.weights:
        if weight.path.endswith("bias"):
            weight.assign(rng.uniform(-0.5, 0.5, weight.shape).astype(np.float32))
    path = export_artifact(model, tmp_path / "weights.npz", {"training": {"note": "equality test"}})
    return model, Engine(load(path))  # any input dimension (Engine.load is the service's: 3-D only)


@pytest.mark.parametrize(
    ("units", "layers", "mixtures", "steps"),
    [(512, 2, 5, 300), (32, 3, 2, 300), (16, 1, 3, 1100)],
    ids=["default-2x512-m5", "3x32-m2", "1x16-m3-crosses-chunks"],
)
def test_engine_equals_keras_on_a_long_sequence(tmp_path, units, layers, mixtures, steps):
    model, engine = keras_and_engine(tmp_path, units, layers, mixtures)
    scaled = typical_events(steps, seed=units) * 10.0
    expected = np.asarray(model(scaled[None]))[0]
    assert expected.shape == (steps, 2 * mixtures * 3 + mixtures)
    batch = engine.mdn_outputs(scaled)
    stepwise = engine.mdn_outputs(scaled, stepwise=True)
    assert batch.dtype == stepwise.dtype == np.float32
    assert np.abs(batch - expected).max() <= TOLERANCE
    assert np.abs(stepwise - expected).max() <= TOLERANCE
    assert engine.metadata["units"] == units and engine.metadata["layers"] == layers


def test_engine_equals_keras_with_keras2_hard_sigmoid_gates_and_another_input_dimension(tmp_path):
    """The artifact's "hard_sigmoid" is Keras 2's; export names it, the engine runs it on both of its paths."""
    model, engine = keras_and_engine(tmp_path, 24, 2, 3, dimension=2, recurrent_activation="hard_sigmoid")
    assert engine.recurrent_activation == "hard_sigmoid" and engine.dimension == 2
    scaled = typical_events(300, seed=5)[:, 1:] * 10.0
    expected = np.asarray(model(scaled[None]))[0]
    assert np.abs(engine.mdn_outputs(scaled) - expected).max() <= TOLERANCE
    assert np.abs(engine.mdn_outputs(scaled, stepwise=True) - expected).max() <= TOLERANCE


def test_keras3_hard_sigmoid_is_not_exported_as_the_artifacts_hard_sigmoid(tmp_path):
    keras = pytest.importorskip("keras")
    mdn = pytest.importorskip("keras_mdn_layer")
    from model.export import export_artifact

    inputs = keras.Input(shape=(None, 3))
    lstm = keras.layers.LSTM(4, recurrent_activation="hard_sigmoid", return_sequences=True, name="lstm_0")(inputs)
    model = keras.Model(inputs, keras.layers.TimeDistributed(mdn.MDN(3, 2), name="mdn")(lstm))
    path = export_artifact(model, tmp_path / "k3.npz")
    with pytest.raises(ArtifactError, match="'lstm_recurrent_activation' is 'keras3_hard_sigmoid'"):
        Engine.load(path)
