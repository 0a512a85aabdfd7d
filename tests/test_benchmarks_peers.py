"""`make bench-peers`'s instrument (benchmarks/peers.py): every peer built from a tiny random artifact gives the
engine's MDN outputs in fp32 (conditioning, step by step, rows batched) and the engine's touches for the same draws,
and a whole (minimal) run writes the record its tables are generated from. No timing is asserted."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from support import require

from benchmarks import peers as bench
from benchmarks import results
from benchmarks.peer import continuation
from devtools.performances import typical_events
from devtools.random_weights import write_random_artifact
from robojam_format import artifact as spec
from robojam_format.layout import REPO_ROOT
from service.engine import Engine

FP32 = [method for method in bench.PEERS if method.endswith("_fp32")]


@pytest.fixture(scope="module")
def runtimes():
    for module, package in (("onnxruntime", "onnxruntime"), ("onnx", "onnx"), ("ai_edge_litert", "ai-edge-litert")):
        require(importlib.util.find_spec(module) is not None, f"{package} is not installed (bench/train extras)")
    pytest.importorskip("tensorflow")  # the .tflite export (train extra)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_random_artifact(tmp_path_factory.mktemp("peers") / "tiny.npz", units=16, layers=2, mixtures=3, seed=5)


@pytest.fixture(scope="module")
def built(runtimes, tiny):
    artifact = spec.load(tiny)
    return Engine(artifact), {method: bench.build_peer(method, artifact) for method in bench.PEERS}


@pytest.mark.parametrize("method", FP32)
def test_each_fp32_peer_gives_the_engines_mdn_outputs(built, method):
    engine, peers = built
    peer = peers[method]
    scaled, requests = bench.check_sequences(engine)
    outputs, states = peer.condition(scaled)
    assert np.abs(outputs - engine.mdn_outputs(scaled)).max() <= bench.FP32_TOLERANCE
    assert len(states) == 2 * engine.layers and all(state.shape == (1, engine.units) for state in states)
    assert np.abs(peer.stepwise(scaled) - engine.mdn_outputs(scaled, stepwise=True)).max() <= bench.FP32_TOLERANCE
    rows = peer.stepwise(np.stack([r.scaled for r in requests], axis=1))  # the batch dimension
    for row, request in enumerate(requests):
        expected = engine.mdn_outputs(request.scaled, stepwise=True)
        assert np.abs(rows[:, row] - expected).max() <= bench.FP32_TOLERANCE


@pytest.mark.parametrize("method", FP32)
def test_each_fp32_peer_draws_the_engines_touches(built, method):
    engine, peers = built
    events = typical_events(60, 3)
    request = engine.prepare(events, 3.0, bench.TEMPERATURE, bench.SIGMA_TEMPERATURE, np.random.default_rng(9))
    ours = continuation(peers[method], engine, request)
    expected = engine.continue_performance(
        events,
        seconds=3.0,
        temperature=bench.TEMPERATURE,
        sigma_temperature=bench.SIGMA_TEMPERATURE,
        rng=np.random.default_rng(9),
    )
    assert ours.shape == expected.shape and len(ours) > 1
    assert np.abs(ours - expected).max() <= bench.TOUCH_TOLERANCE


def test_int8_peers_are_close_but_not_the_engine(built):
    engine, peers = built
    scaled, _ = bench.check_sequences(engine)
    expected = engine.mdn_outputs(scaled)
    for method in bench.PEERS:
        if method.endswith("_int8"):
            found = bench.drift(peers[method].condition(scaled)[0], expected, engine)
            assert 0 < found["mdn_max_abs_diff"] < 1.0, method
            assert found["mixture_weights_max_abs_diff"] < 0.5, method


def test_a_minimal_run_writes_the_record_the_tables_read(runtimes, tiny, tmp_path):
    settings = bench.Settings(rounds=1, round_seconds=1e-4, batches=(1, 2), peak_size=64)
    record = json.loads(json.dumps(bench.measure({"2x16 test": tiny}, settings, log=lambda line: None)))
    assert set(record) >= {"date", "machine", "targets", "versions", "settings", "models"}
    assert set(record["machine"]["extensions"]) == set(bench.machine_limits.EXTENSIONS)
    assert record["machine"]["sgemm_peak_gflops"] > 0
    model = record["models"]["2x16 test"]
    methods = set(bench.methods())
    assert {"project_fp32", "onnxruntime_fp32", "litert_fp32", "onnxruntime_int8", "litert_int8"} <= methods
    assert set(model["request_ms"]) == set(model["checks"]) == methods
    assert set(model["step_us"]) == {"1", "2"} and all(set(step) == methods for step in model["step_us"].values())
    for result in [*model["request_ms"].values(), *(r for step in model["step_us"].values() for r in step.values())]:
        assert 0 < result["min"] <= result["median"] <= result["max"] and result["rounds"] == 1
    assert all(r["peak_fraction"] > 0 for step in model["step_us"].values() for r in step.values())
    # The floors divide by bandwidths measured per buffer size: on a model this small (cache-resident, a few kB)
    # their order is timing noise; the bytes they stream are not.
    assert model["weight_bytes"]["int8"] < model["weight_bytes"]["fp32"]
    assert all(floor > 0 for floor in model["floor_us_b1"].values())
    for method, found in model["checks"].items():
        assert found["within_tolerance"] if method.endswith("_fp32") else "within_tolerance" not in found
    assert bench.failures(record) == []
    table = results.peers_tables(record)
    assert "| project engine (fp32) |" in table and "| LiteRT, dynamic-range int8 |" in table
    assert table.count("B=2") == 1


def test_a_method_outside_the_tolerance_fails_the_run():
    record = {"models": {"m": {"checks": {"litert_fp32": {"within_tolerance": False}, "x_int8": {}}}}}
    assert bench.failures(record) == ["m: litert_fp32"]


def test_the_project_precisions_are_methods_first():
    assert bench.methods()[: len(bench.PROJECT_PRECISIONS)] == tuple(f"project_{p}" for p in bench.PROJECT_PRECISIONS)
    assert bench.precision_of("project_fp32") == "fp32" and bench.precision_of("onnxruntime_int8") == "int8"


def test_the_avx2_mode_builds_the_project_for_an_avx2_target():
    """`--avx2`'s environment: Numba compiles for haswell (4x24 tiles: 4 rows x 3 ymm), OpenBLAS its Haswell kernels."""
    code = "from benchmarks.peers import targets; print(targets()['project'])"
    env = {**os.environ, **bench.AVX2_ENVIRONMENT}
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "AVX2 target" in run.stdout and "4x24 tiles" in run.stdout and "OpenBLAS Haswell kernels" in run.stdout
