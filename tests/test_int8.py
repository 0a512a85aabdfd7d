"""ROBOJAM_PRECISION=int8 (service/int8_kernels.py): the kernel against a NumPy reference of its quantization (bit
for bit, with and without VNNI), the engine's int8 outputs within a stated bound of float32, the lone path equal to
the batched path bit for bit (integer sums do not depend on the batch), and the setting in /api/model and /metrics."""

from __future__ import annotations

import numpy as np
import pytest

from devtools.performances import typical_events
from devtools.random_weights import write_random_artifact
from robojam_format.layout import SHIPPED_WEIGHTS
from service import int8_kernels
from service.app import create_app
from service.batcher import Batcher
from service.engine import DEFAULT_SIGMA_TEMPERATURE, DEFAULT_TEMPERATURE, BatchState, Engine
from service.settings import BatchPolicy, from_env

DEFAULTS = (DEFAULT_TEMPERATURE, DEFAULT_SIGMA_TEMPERATURE)  # continue_performance's, the lone reply compared with

# int8 against float32 over 200 teacher-forced steps: raw MDN outputs (means, activated sigmas, pi logits) and
# mixture weights at temperature 1.5, at most about 3x the drift measured on the shipped 2x256 model (0.031 and
# 0.0026; random 2x64 weights: 0.005 and 0.0004; benchmarks/precision.json has 600 steps of 2x256 and 2x512).
OUTPUT_BOUND, WEIGHT_BOUND = 0.1, 0.01


@pytest.fixture(scope="module")
def random_path(tmp_path_factory):
    return write_random_artifact(tmp_path_factory.mktemp("q") / "w.npz", units=64, mixtures=5)


@pytest.fixture(scope="module", params=["sigmoid", "hard_sigmoid"])
def engines(request, tmp_path_factory) -> tuple[Engine, Engine]:
    path = write_random_artifact(
        tmp_path_factory.mktemp("e") / "w.npz", units=64, mixtures=5, lstm_recurrent_activation=request.param
    )
    return Engine.load(path), Engine.load(path, "int8")


def reference_product(z: np.ndarray, lo: int, layer: int8_kernels.Layer) -> np.ndarray:
    """NumPy's reading of the kernel: quantize each row, sum in int64, dequantize in float64."""
    fp = z[:, lo : lo + layer.fp_cols].astype(np.float64) @ layer.fp.T.astype(np.float64)
    a = z[:, lo + layer.fp_cols : lo + layer.fp_cols + layer.columns]
    top = np.abs(a).max(axis=1, keepdims=True)
    q = np.rint(a * np.where(top > 0, np.float32(127) / np.where(top > 0, top, 1), 0).astype(np.float32))
    sums = q.astype(np.int64) @ layer.quantized[:, : layer.columns].T.astype(np.int64)
    scale = (top / np.float32(127)).astype(np.float32).astype(np.float64) * layer.scales.astype(np.float64)
    return fp + sums * scale + layer.bias


@pytest.mark.exact
@pytest.mark.parametrize("rows", [1, 3, 4, 9, 16])
def test_the_integer_sums_are_the_same_with_and_without_vnni_and_in_any_batch(rows):
    rng = np.random.default_rng(rows)
    weights = rng.uniform(-0.2, 0.2, size=(3 + 70, 4 * 70)).astype(np.float32)  # K, N not multiples of 64 or 4
    layer = int8_kernels.quantize_layer(weights, rng.standard_normal(4 * 70).astype(np.float32), 3)
    z = rng.uniform(-1, 1, size=(rows, 3 + 2 * 70)).astype(np.float32)
    z[0, 3:] = 0.0  # an all-zero row quantizes with scale 0
    z[-1, 3:] *= np.float32(1e-32)  # a row too small to divide by quantizes as zeros (finite, never NaN)
    results = []
    for vnni in {False, int8_kernels.VNNI}:
        out = np.empty((rows, 4 * 70), dtype=np.float32)
        int8_kernels.kernels(vnni).qmatmul_rows(z, 0, rows, layer, out)
        results.append(out)
        alone = np.empty((1, 4 * 70), dtype=np.float32)
        for row in range(rows):
            int8_kernels.kernels(vnni).qmatmul_rows(z[row : row + 1], 0, 1, layer, alone)
            assert np.array_equal(alone[0], out[row])
    assert all(np.array_equal(results[0], other) for other in results[1:])
    assert np.isfinite(results[0]).all()
    np.testing.assert_allclose(results[0], reference_product(z, 0, layer), rtol=0, atol=1e-4)
    np.testing.assert_allclose(results[0], z[:, :73] @ weights + layer.bias, rtol=0, atol=0.05)


def test_the_kernel_really_uses_vnni_where_the_cpu_has_it():
    if not int8_kernels.VNNI:
        pytest.skip("this CPU has no AVX-512 VNNI")
    asm = "\n".join(int8_kernels.kernels(True).integer_sums.inspect_asm().values())
    assert "vpdpbusd" in asm


def drift(fp32: Engine, int8: Engine) -> tuple[float, float]:
    md = fp32.mixtures * fp32.dimension
    events = (typical_events(200, 7) * fp32.scale).astype(np.float32)
    a, b = fp32.mdn_outputs(events), int8.mdn_outputs(events)
    weights = [np.exp(o[:, 2 * md :] / 1.5) / np.exp(o[:, 2 * md :] / 1.5).sum(axis=1, keepdims=True) for o in (a, b)]
    return float(np.abs(a - b).max()), float(np.abs(weights[0] - weights[1]).max())


def test_int8_outputs_stay_within_the_stated_bound_of_float32(engines):
    outputs, weights = drift(*engines)
    assert 0 < outputs <= OUTPUT_BOUND and weights <= WEIGHT_BOUND


def test_int8_on_the_shipped_weights_stays_within_the_stated_bound():
    outputs, weights = drift(Engine.load(SHIPPED_WEIGHTS), Engine.load(SHIPPED_WEIGHTS, "int8"))
    assert 0 < outputs <= OUTPUT_BOUND and weights <= WEIGHT_BOUND


@pytest.mark.exact
def test_int8_conditioning_and_stepwise_paths_are_the_same_bits(engines):
    _, int8 = engines
    events = (typical_events(150, 3) * int8.scale).astype(np.float32)  # more than one CHUNK
    assert np.array_equal(int8.mdn_outputs(events), int8.mdn_outputs(events, stepwise=True))


@pytest.mark.exact
@pytest.mark.parametrize("temperatures", [DEFAULTS, (1.5, 0.01), (0.5, 1.0)], ids=["defaults", "robojam", "wide"])
def test_int8_batched_replies_equal_the_lone_engine_bit_for_bit(engines, temperatures):
    """Unlike float32 (equal within rounding once batched), int8's products are integer sums: the same bits, as
    long as the batched draw is the Sampler's to the last bit (a sigma's expm1 once was not: hard_sigmoid at 1.0 /
    0.1 differed by an ulp)."""
    _, int8 = engines
    seeds = range(16)
    temperature, sigma_temperature = temperatures
    expected = [
        int8.continue_performance(
            typical_events(20 + 15 * s, s), temperature=temperature, sigma_temperature=sigma_temperature,
            rng=np.random.default_rng(s),
        )
        for s in seeds
    ]  # fmt: skip
    state = BatchState(int8, len(seeds))
    slots = [
        state.add(int8.prepare(typical_events(20 + 15 * s, s), 5.0, *temperatures, np.random.default_rng(s)))
        for s in seeds
    ]
    results, largest = {}, 0
    while state.active:
        largest = max(largest, state.active)
        for row in int8.step_rows(state):
            slot = state.slot(row)
            results[slot] = state.result(slot)
            state.remove(row)
    assert largest == len(seeds)
    for slot, reply in zip(slots, expected, strict=True):
        assert np.array_equal(results[slot], reply)


@pytest.mark.exact
def test_a_lone_int8_request_in_the_batcher_is_the_engines_reply(engines):
    _, int8 = engines
    batcher = Batcher(int8, BatchPolicy(max_batch=8))
    events = typical_events(300, 1)  # three conditioning chunks
    assert np.array_equal(
        batcher.generate(events, rng=np.random.default_rng(2)),
        int8.continue_performance(events, rng=np.random.default_rng(2)),
    )


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of fp32, int8, got 'bf16'"):
        Engine.load(SHIPPED_WEIGHTS, "bf16")
    assert from_env({})["ROBOJAM_PRECISION"] == "fp32"
    assert from_env({"ROBOJAM_PRECISION": " INT8 "})["ROBOJAM_PRECISION"] == "int8"


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_precision_is_served_and_reported(random_path, monkeypatch, precision):
    monkeypatch.setenv("ROBOJAM_WEIGHTS", str(random_path))
    monkeypatch.setenv("ROBOJAM_PRECISION", precision)
    app = create_app()
    assert app.extensions["robojam"].engine.precision == precision
    client = app.test_client()
    assert client.get("/api/model").get_json()["precision"] == precision
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'robojam_model_precision_info{{precision="{precision}"}} 1.0' in metrics
    other = "int8" if precision == "fp32" else "fp32"
    assert f'robojam_model_precision_info{{precision="{other}"}} 0.0' in metrics


def test_an_int8_engine_without_vnni_warns_once_at_start_and_answers_the_same_bits(engines, caplog):
    fp32, int8 = engines
    weights = (fp32.weight_arrays()[: fp32.layers], fp32.weight_arrays()[3 * fp32.layers : 4 * fp32.layers])
    with caplog.at_level("WARNING", logger="service.int8_kernels"):
        portable = int8_kernels.Products(
            *weights, *fp32.weight_arrays()[-2:], fp32.dimension, int8_kernels.kernels(False)
        )
    assert [record.getMessage() for record in caplog.records] == [int8_kernels.PORTABLE_WARNING]
    state = BatchState(int8, 3)
    state.z[:] = np.random.default_rng(0).uniform(-1, 1, size=state.z.shape).astype(np.float32)
    mine, theirs = np.empty_like(state.g), np.empty_like(state.g)
    for layer in range(int8.layers):
        portable.layer(layer, state.z, 3, mine)
        int8_kernels.Products(*weights, *fp32.weight_arrays()[-2:], fp32.dimension).layer(layer, state.z, 3, theirs)
        assert np.array_equal(mine, theirs)
