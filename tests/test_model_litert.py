"""python -m model.litert: an artifact becomes a one-step `.tflite` model with built-in ops only and IMPSY's signature,
and LiteRT (ai-edge-litert) running it step by step gives the engine's MDN outputs to 1e-4 per step."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from support import require

from devtools.performances import typical_events
from devtools.random_weights import write_random_artifact
from robojam_format import artifact as spec
from robojam_format.layout import SHIPPED_WEIGHTS
from service.engine import Engine

TOLERANCE = 1e-4
# What the one step may be made of: LiteRT built-ins that IMPSY's runtimes (Pi, app, LiteRT.js) all have.
BUILTINS = {"ADD", "CONCATENATION", "ELU", "FULLY_CONNECTED", "LOGISTIC", "MAXIMUM", "MINIMUM", "MUL", "RELU", "SPLIT"}
BUILTINS |= {"TANH", "RESHAPE"}


@pytest.fixture(scope="module")
def litert():
    pytest.importorskip("tensorflow")
    require(importlib.util.find_spec("ai_edge_litert") is not None, "ai-edge-litert is not installed (train extra)")
    from model import litert

    return litert


def exported_matches_the_engine(litert, artifact_path, tmp_path, scaled_runs) -> set[str]:
    """Export, run every sequence in LiteRT from zero state (a reset between them), compare to the engine; the
    model's operators."""
    out = litert.export_tflite(artifact_path, tmp_path / "model.tflite")
    stepper = litert.LiteRTStepper(out)
    engine = Engine(spec.load(artifact_path))
    for scaled in scaled_runs:
        expected = engine.mdn_outputs(scaled, stepwise=True)
        got = stepper.mdn_outputs(scaled)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max(axis=1).max() <= TOLERANCE
    return stepper.ops()


@pytest.mark.slow
def test_the_shipped_model_runs_in_litert_with_builtin_ops_and_matches_the_engine(litert, tmp_path):
    runs = [typical_events(150, seed=1) * 10.0, typical_events(60, seed=2) * 10.0]
    ops = exported_matches_the_engine(litert, SHIPPED_WEIGHTS, tmp_path, runs)
    assert ops <= BUILTINS and "LOGISTIC" in ops, ops


def test_keras2_gates_and_another_dimension_export_too_in_impsys_signature(litert, tmp_path):
    path = write_random_artifact(
        tmp_path / "hard.npz", units=16, layers=3, mixtures=4, dimension=2, lstm_recurrent_activation="hard_sigmoid"
    )
    runs = [typical_events(120, seed=3)[:, 1:] * 10.0, typical_events(30, seed=4)[:, 1:] * 10.0]
    ops = exported_matches_the_engine(litert, path, tmp_path, runs)
    assert ops <= BUILTINS and "LOGISTIC" not in ops, ops  # hard_sigmoid is a clip, not a sigmoid
    runner = litert.LiteRTStepper(tmp_path / "model.tflite").runner
    inputs, outputs = runner.get_input_details(), runner.get_output_details()
    assert set(inputs) == {"inputs", "state_h_0", "state_c_0", "state_h_1", "state_c_1", "state_h_2", "state_c_2"}
    assert list(inputs["inputs"]["shape"]) == [1, 1, 2] and list(inputs["state_c_2"]["shape"]) == [1, 16]
    assert set(outputs) == {"mdn_outputs", "lstm_0", "lstm_0_1", "lstm_1", "lstm_1_1", "lstm_2", "lstm_2_1"}
    assert list(outputs["mdn_outputs"]["shape"]) == [1, 2 * 4 * 2 + 4]


def test_the_cli_refuses_a_bad_output_name_and_a_bad_artifact(litert, tmp_path):
    from model.cli import CLIError

    with pytest.raises(CLIError, match="--out must end in .tflite"):
        litert.main([str(SHIPPED_WEIGHTS), "--out", str(tmp_path / "m.npz")])
    with pytest.raises(CLIError, match="weights artifact not found"):
        litert.main([str(tmp_path / "absent.npz"), "--out", str(tmp_path / "m.tflite")])
