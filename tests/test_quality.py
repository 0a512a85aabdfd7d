"""benchmarks/quality.py: the touch statistics, the distance, the relatedness, and a seeded slice of the evaluation of
the shipped model against its baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import quality
from robojam_format.layout import SHIPPED_WEIGHTS


def test_touch_statistics_of_a_tap_and_a_swipe():
    events = np.array(
        [[0.5, 0.5, 0.0], [0.2, 0.2, 0.5], [0.2, 0.5, 0.02], [0.6, 0.5, 0.02]], dtype=np.float32
    )  # a tap, then a 3-touch swipe of length 0.3 + 0.4 in 0.04 s
    scalars, touches = quality.touch_features(events)
    assert [len(s) for s in quality.strokes(events)] == [1, 3]
    assert scalars["tap_share"] == 0.5 and scalars["gap_share"] == pytest.approx(1 / 3)
    assert scalars["duration"] == pytest.approx(0.54) and scalars["touches_per_second"] == pytest.approx(4 / 0.54)
    assert scalars["coverage"] == 3 / 64 and scalars["clipped_share"] == 0.0
    assert touches["stroke_length"] == pytest.approx([0.7]) and touches["stroke_speed"] == pytest.approx([17.5])
    assert touches["dt_moving"] == pytest.approx([0.02, 0.02]) and touches["dt_touch_down"] == pytest.approx([0.5])
    edge = np.array([[0.3, 0.3, 0.0], [0.0, 0.5, 0.05], [0.4, 0.5, 0.001]], np.float32)  # at x = 0, at MIN_DT
    assert quality.touch_features(edge)[0]["clipped_share"] == pytest.approx(2 / 3)


def test_wasserstein_distance_of_samples():
    assert quality.wasserstein([0.0], [1.0]) == pytest.approx(1.0)
    assert quality.wasserstein([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == 0.0
    assert quality.wasserstein([0.0, 1.0], [2.0, 3.0]) == pytest.approx(2.0)
    assert np.isnan(quality.wasserstein([], [1.0]))


@pytest.fixture(scope="module")
def report(data_dir):
    """A slice (8 calls, 2 samplings), evaluated twice: the seed fixes it."""
    corpus = data_dir / "TinyPerformanceCorpus.h5"
    options = {"temperature": 1.5, "sigma_temperature": 0.01, "repeats": 2, "limit": 8, "seed": 3}
    first = quality.evaluate(SHIPPED_WEIGHTS, corpus, **options)
    assert json.loads(json.dumps(first)) == quality.evaluate(SHIPPED_WEIGHTS, corpus, **options)  # seeded
    return first


@pytest.mark.slow
def test_a_seeded_slice_reports_every_system_and_statistic_with_intervals(report):
    assert report["calls"] == 8 and set(report["systems"]) == set(quality.SYSTEMS)
    for system in quality.SYSTEMS:
        for interval in report["systems"][system]["distance"].values():
            assert interval["mean"] is None or interval["low"] <= interval["mean"] <= interval["high"]
    systems = report["systems"]
    assert systems["call replayed"]["relatedness"]["mean"] == pytest.approx(1.0)
    assert systems["other human"]["distance"] == systems["call replayed"]["distance"]  # the same performances
    assert abs(systems["uniform"]["relatedness"]["mean"]) < 0.2  # random touches know nothing of the call
    assert (
        systems["model"]["distance"]["stroke_length"]["mean"] < systems["uniform"]["distance"]["stroke_length"]["mean"]
    )
    assert set(report["verdict"]) == set(quality.SYSTEMS[1:])
    assert "| call → reply relatedness |" in quality.table(report)
