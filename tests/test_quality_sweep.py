"""benchmarks/quality_sweep.py: the sweep runs and is seeded, the model card's sweep block is generated from the
committed results, those results say what the card says, and the service's defaults follow their verdict."""

from __future__ import annotations

import json

import pytest

from benchmarks import quality, quality_sweep
from robojam_format.layout import SHIPPED_WEIGHTS
from service.predict import PredictRequest

SLICE = {"limit": 3, "repeats": 2, "seed": 5}


def committed() -> dict:
    return json.loads(quality_sweep.RESULTS.read_text())


def test_the_cards_sweep_block_is_generated_from_the_committed_results():
    text = quality_sweep.CARD.read_text(encoding="utf-8")
    block = quality_sweep.card_block(committed())
    assert quality_sweep.BEGIN in text and f"{quality_sweep.BEGIN}\n{block}\n{quality_sweep.END}" in text
    assert quality_sweep.main(["--check"]) == 0


def test_the_committed_sweep_prefers_its_lowest_score_and_compares_it_with_robojams():
    report = committed()
    settings = report["settings"]
    assert len(report["points"]) == len(settings["temperatures"]) * len(settings["sigma_temperatures"]) >= 16
    for p in [*report["points"], report["noise_floor"]]:
        for value in [p["score"], p["relatedness"], *p["distance"].values()]:
            assert value["mean"] is None or value["low"] - 1e-12 <= value["mean"] <= value["high"] + 1e-12  # rounding
    chosen = report["preferred"]
    best = quality_sweep.find(report, chosen["temperature"], chosen["sigma_temperature"])
    robojam = quality_sweep.find(report, **quality_sweep.ROBOJAM_DEFAULTS)
    assert best["score"]["mean"] == min(p["score"]["mean"] for p in report["points"] if p["score"]["mean"] is not None)
    assert chosen["outside_intervals"] == (best["score"]["high"] < robojam["score"]["low"])
    assert chosen["keeps_relatedness"] == (best["relatedness"]["mean"] >= robojam["relatedness"]["low"])
    assert chosen["change_default"] == (chosen["outside_intervals"] and chosen["keeps_relatedness"])
    assert report["noise_floor"]["score"]["mean"] < robojam["score"]["mean"]  # humans are nearer humans


def test_robojams_point_is_make_qualitys_model_column():
    """Same calls, seed and random numbers: the sweep's 1.5 / 0.01 reproduces benchmarks/quality.json."""
    report, evaluation = committed(), json.loads((quality_sweep.HERE / "quality.json").read_text())
    assert report["calls"] == evaluation["calls"] and report["corpus_sha256"] == evaluation["corpus_sha256"]
    assert report["settings"]["repeats"] == evaluation["settings"]["repeats"]
    robojam = quality_sweep.find(report, **quality_sweep.ROBOJAM_DEFAULTS)
    model = evaluation["systems"]["model"]
    assert robojam["distance"] == model["distance"] and robojam["relatedness"] == model["relatedness"]
    assert report["noise_floor"]["distance"] == evaluation["systems"]["other human"]["distance"]


def test_the_services_defaults_are_the_ones_the_sweep_settles_on():
    chosen = committed()["preferred"]
    expected = (
        {k: chosen[k] for k in quality_sweep.ROBOJAM_DEFAULTS}
        if chosen["change_default"]
        else quality_sweep.ROBOJAM_DEFAULTS
    )
    assert {k: PredictRequest.model_fields[k].default for k in expected} == expected


def interval(mean, low, high):
    return {"mean": mean, "low": low, "high": high}


def test_a_point_replaces_robojams_only_outside_the_intervals_and_keeping_relatedness():
    def points(best_high, best_related):
        return [
            {"temperature": 1.5, "sigma_temperature": 0.01, "score": interval(1.0, 0.9, 1.1),
             "relatedness": interval(0.02, 0.0, 0.04)},
            {"temperature": 1.0, "sigma_temperature": 0.3, "score": interval(0.8, 0.7, best_high),
             "relatedness": interval(best_related, best_related, best_related)},
        ]  # fmt: skip

    paired = [[1.0, 1.1], [0.8, 0.85]]
    clear = quality_sweep.preference(points(0.85, 0.03), paired, robojam=0)
    assert (clear["temperature"], clear["sigma_temperature"]) == (1.0, 0.3) and clear["change_default"]
    assert clear["score_advantage"]["mean"] == pytest.approx(0.225)
    overlapping = quality_sweep.preference(points(0.95, 0.03), paired, robojam=0)
    assert not overlapping["outside_intervals"] and not overlapping["change_default"]
    unrelated = quality_sweep.preference(points(0.85, -0.05), paired, robojam=0)
    assert unrelated["outside_intervals"] and not unrelated["keeps_relatedness"] and not unrelated["change_default"]


@pytest.mark.slow
def test_a_seeded_slice_of_the_sweep_runs_and_repeats_itself(data_dir):
    corpus = data_dir / "TinyPerformanceCorpus.h5"
    grid = {"temperatures": [1.5], "sigma_temperatures": [0.01, 0.3]}
    first = quality_sweep.sweep(SHIPPED_WEIGHTS, corpus, **grid, **SLICE)
    assert json.loads(json.dumps(first)) == quality_sweep.sweep(SHIPPED_WEIGHTS, corpus, **grid, **SLICE)
    assert first["calls"] == 3 and len(first["points"]) == 2 and first["settings"]["limit"] == 3
    evaluation = quality.evaluate(SHIPPED_WEIGHTS, corpus, temperature=1.5, sigma_temperature=0.01, **SLICE)
    robojam = quality_sweep.find(first, 1.5, 0.01)
    assert robojam["distance"] == evaluation["systems"]["model"]["distance"]
    assert robojam["score"]["mean"] == pytest.approx(
        sum(d["mean"] for d in robojam["distance"].values()) / len(quality.FEATURES)
    )
    wider = quality_sweep.find(first, 1.5, 0.3)
    assert wider["mean"]["spatial_spread"] > robojam["mean"]["spatial_spread"]  # more sigma, more spread
    assert "| statistic | human mean |" in quality_sweep.card_block(first)
    with pytest.raises(ValueError, match="RoboJam's defaults"):
        quality_sweep.sweep(SHIPPED_WEIGHTS, corpus, temperatures=[1.0], sigma_temperatures=[0.3], **SLICE)
