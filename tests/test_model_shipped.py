"""The shipped default weights: they load, match their model card, and beat a trivial baseline on validation."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from model.data import load_corpus, make_windows, split_by_performance
from model.defaults import SCALE
from model.evaluate import diagonal_gaussian_nll, fit_diagonal_gaussian, model_nll
from model.export import model_from_artifact, read_artifact
from robojam_format.layout import REPO_ROOT

WEIGHTS = REPO_ROOT / "model" / "weights" / "robojam.npz"
CARD = REPO_ROOT / "model" / "MODEL_CARD.md"


@pytest.fixture(scope="module")
def shipped():
    return read_artifact(WEIGHTS)


@pytest.fixture(scope="module")
def validation(shipped, data_dir):
    """Rebuild the run's exact split from the settings recorded in the artifact."""
    metadata, _ = shipped
    run = metadata["training"]
    corpus = load_corpus(data_dir / "TinyPerformanceCorpus.h5")
    assert corpus.sha256 == metadata["data_sha256"], "the shipped weights were trained on another corpus file"
    train_idx, val_idx = split_by_performance(corpus.performances, run["val_fraction"], run["seed"])
    _, y_train = make_windows([corpus.performances[i] for i in train_idx], run["seq_len"], run["step"])
    x_val, y_val = make_windows([corpus.performances[i] for i in val_idx], run["seq_len"], run["seq_len"])
    return y_train * SCALE, x_val * SCALE, y_val * SCALE


def test_shipped_artifact_describes_a_real_training_run(shipped):
    metadata, arrays = shipped
    assert metadata["format"] == "robojam-mdrnn-weights" and metadata["format_version"] == 1
    assert metadata["layers"] >= 2 and metadata["units"] >= 128 and metadata["mixtures"] == 5
    assert np.isfinite(metadata["val_nll"]) and np.isfinite(metadata["train_nll"])
    assert metadata["training"]["max_windows"] is None, "shipped weights must be trained on the whole split"
    assert len(arrays) == 3 * metadata["layers"] + 6


def test_shipped_weights_beat_a_single_gaussian_on_validation(shipped, validation):
    metadata, _ = shipped
    y_train, x_val, y_val = validation
    mean, std = fit_diagonal_gaussian(y_train)
    baseline = diagonal_gaussian_nll(y_val, mean, std)
    model = model_from_artifact(WEIGHTS)
    nll = model_nll(model, x_val, y_val, metadata["mixtures"])
    assert nll < baseline, (nll, baseline)
    # The number recorded at training time is the one we measure now (same split, same weights).
    assert nll == pytest.approx(metadata["val_nll"], abs=2e-3)


def test_model_card_is_true_to_the_shipped_run(shipped):
    metadata, _ = shipped
    card = CARD.read_text(encoding="utf-8")
    assert f"{metadata['val_nll']:.3f}" in card
    assert f"{metadata['train_nll']:.3f}" in card
    assert f"{metadata['layers']}×{metadata['units']}" in card
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", card)
    assert images, "the model card shows the loss curve"
    for image in images:
        assert (CARD.parent / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = list(csv.DictReader((REPO_ROOT / "model" / "weights" / "robojam-training-log.csv").open()))
    best = min(float(row["val_loss"]) for row in log)
    assert best == pytest.approx(metadata["val_nll"], abs=1e-4)
