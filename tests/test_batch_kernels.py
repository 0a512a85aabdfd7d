"""The batching loop's compiled kernels (service/batch_kernels.py) against NumPy and the engine's own Sampler."""

from __future__ import annotations

import numpy as np
import pytest

from devtools.random_weights import write_random_artifact
from service.batch_kernels import (
    AVX2_TILES,
    AVX512_TILES,
    TILES,
    compile_matmul,
    feed_rows,
    matmul_rows,
    packed,
    sample_rows,
    tanh_rows,
    tile_shape,
)
from service.engine import MAX_STEPS, MIN_DT, Engine, Sampler

F32 = np.float32


def frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=F32)
    array.setflags(write=False)
    return array


@pytest.fixture(
    scope="module", params=[AVX2_TILES, AVX512_TILES], ids=["4x3 ymm tiles (AVX2)", "8x2 zmm tiles (AVX-512)"]
)
def product(request):
    """Both tile shapes, whichever this CPU would pick (the one it picks is `matmul_rows`): (tiles, product)."""
    return request.param, matmul_rows if request.param == TILES else compile_matmul(request.param)


@pytest.mark.parametrize(("k", "n"), [(1, 1), (3, 4), (67, 35), (259, 1024), (16, 2050), (5, 40), (1539, 70)])
@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 7, 8, 13, 15, 32])
def test_the_product_equals_numpy_for_every_row_and_column_count(product, k, n, rows):
    """Whole tiles and the rows and panel columns left over, from an offset into wider state rows; rows past `rows`
    untouched."""
    tiles, product = product
    rng = np.random.default_rng(rows * 1000 + k)
    weights, bias = rng.standard_normal((k, n)).astype(F32), frozen(rng.standard_normal(n))
    lo = 5
    z = rng.standard_normal((40, lo + k + 7)).astype(F32)
    out = np.full((40, n), 7.0, dtype=F32)
    product(z, lo, rows, packed(weights, bias, tiles), out)
    expected = z[:rows, lo : lo + k].astype(np.float64) @ weights.astype(np.float64) + bias
    np.testing.assert_allclose(out[:rows], expected, rtol=1e-5, atol=1e-4 * np.sqrt(k))
    assert (out[rows:] == 7.0).all()


def test_prefetching_leaves_every_sum_as_it_is(product):
    """The prefetch is a hint: with and without it, the same sums bit for bit (whole tiles and rows left over)."""
    tiles, product = product
    rng = np.random.default_rng(3)
    weights, bias = rng.standard_normal((600, 70)).astype(F32), frozen(rng.standard_normal(70))
    z, layout = rng.standard_normal((2 * tiles.rows + 3, 600)).astype(F32), packed(weights, bias, tiles)
    prefetching, plain = (np.empty((len(z), 70), dtype=F32) for _ in range(2))
    product(z, 0, len(z), layout, prefetching)
    compile_matmul(tiles, ahead=0)(z, 0, len(z), layout, plain)
    np.testing.assert_array_equal(prefetching, plain)


def test_the_tile_follows_the_vector_registers(monkeypatch):
    """8 rows of 2 zmm vectors where AVX-512 gives 32 registers, 4 rows of 3 ymm where AVX2 gives 16 (as Numba's
    NUMBA_CPU_FEATURES says)."""
    import numba

    monkeypatch.setattr(numba.config, "CPU_FEATURES", "+avx,+avx2,+fma,-avx512f")
    assert tile_shape() == AVX2_TILES
    assert (AVX2_TILES.rows, AVX2_TILES.vectors, AVX2_TILES.width) == (4, 3, 8)
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "+avx,+avx2,+fma,+avx512f,+avx512bw")
    assert tile_shape() == AVX512_TILES
    assert (AVX512_TILES.rows, AVX512_TILES.vectors, AVX512_TILES.width) == (8, 2, 16)


def test_the_packed_layout_is_panels_with_the_bias_first():
    """Panels of one tile's width, bias in row 0, the last panel zero-padded; read-only."""
    weights = np.arange(3 * 40, dtype=F32).reshape(3, 40)
    bias = -np.arange(40, dtype=F32) - 1
    layout = packed(weights, bias, AVX512_TILES)
    assert layout.shape == (2, 4, 32) and not layout.flags.writeable and layout.flags.c_contiguous
    np.testing.assert_array_equal(layout[1, 0, :8], bias[32:])
    np.testing.assert_array_equal(layout[0, 1:], weights[:, :32])
    np.testing.assert_array_equal(layout[1, 1:, :8], weights[:, 32:])
    assert (layout[1, :, 8:] == 0).all()


def test_the_product_keeps_nan_and_infinity_meaning():
    """Only reassociation and contraction are allowed: a NaN input is not optimised away."""
    weights, bias = np.ones((8, 4), dtype=F32), frozen(np.zeros(4))
    z = np.ones((4, 8), dtype=F32)
    z[1, 3], z[2, 0] = np.nan, np.inf
    out = np.empty((4, 4), dtype=F32)
    matmul_rows(z, 0, 4, packed(weights, bias), out)
    assert (out[0] == 8.0).all() and np.isnan(out[1]).all() and np.isposinf(out[2]).all() and (out[3] == 8.0).all()


def test_the_kernels_are_compiled_once_and_refuse_other_types():
    """Compiled eagerly for one signature: a float64 array is a TypeError, never a compile at request time."""
    weights = packed(np.ones((4, 4), dtype=F32), frozen(np.zeros(4)))
    with pytest.raises(TypeError):
        matmul_rows(np.ones((4, 4)), 0, 4, weights, np.empty((4, 4), dtype=F32))
    for kernel in (matmul_rows, sample_rows, feed_rows):
        assert len(kernel.signatures) == 1


def test_weights_that_are_not_a_matrix_are_refused():
    with pytest.raises(ValueError, match="must be a"):
        packed(np.ones(8, dtype=F32), np.zeros(8, dtype=F32))
    with pytest.raises(ValueError, match="must be a"):
        packed(np.ones((2, 8), dtype=F32), np.zeros(7, dtype=F32))
    with pytest.raises(ValueError, match="must be a"):
        packed(np.ones((0, 8), dtype=F32), np.zeros(8, dtype=F32))


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    return Engine.load(write_random_artifact(tmp_path_factory.mktemp("k") / "w.npz", units=16, mixtures=5))


@pytest.mark.exact
def test_the_compiled_draw_is_the_engine_samplers_draw(engine):
    """Same MDN outputs and draws: the same touch as Sampler.sample, bit for bit, for every row drawn, across
    temperatures from subnormal to huge and outputs with NaN and extreme values; undrawn rows are left alone."""
    rng = np.random.default_rng(5)
    d, rows_total = engine.dimension, 24
    width = engine.output_size + 1
    out = (rng.standard_normal((rows_total, width)) * rng.choice([0.1, 3.0, 60.0], (rows_total, 1))).astype(F32)
    out[3, 2] = np.nan  # a NaN mean: the touch is clipped to its bound, as np.fmax does
    out[4, engine.mixtures * d] = -90.0  # a sigma whose expm1 saturates at -1
    temperatures = [1.5, 5e-324, 1e-300, 0.5, 40.0, 1e300]
    slots = rng.permutation(rows_total).astype(np.int64)
    choices = rng.random((rows_total, MAX_STEPS))
    noise = (rng.standard_normal((rows_total, MAX_STEPS, d)) * 0.1).astype(F32)
    generated = np.zeros((rows_total, MAX_STEPS, d), dtype=F32)
    steps = rng.integers(0, 20, rows_total).astype(np.int64)
    total = np.zeros(rows_total)
    seconds = np.full(rows_total, np.inf)
    seconds[slots[7]] = 0.0  # row 7 finishes at once
    with np.errstate(over="ignore"):
        inv_temperature = np.array([1.0 / temperatures[s % len(temperatures)] for s in range(rows_total)])
    z = np.zeros((rows_total, d + 4), dtype=F32)
    finished = np.zeros(rows_total, dtype=bool)
    drawn = np.array([0, 3, 4, 7, 9, 10, 15, 23], dtype=np.int64)
    before = steps.copy()
    done = sample_rows(
        out, drawn, slots, engine.mixtures, F32(engine.scale), F32(engine.sigma_epsilon), choices, noise, generated,
        steps, total, seconds, inv_temperature, z, finished,
    )  # fmt: skip
    assert done == 1 and finished[7] and finished.sum() == 1
    for row in range(rows_total):
        slot = slots[row]
        if row not in drawn:
            assert steps[slot] == before[slot] and not z[row].any()
            continue
        step = before[slot]
        raw = out[row, : engine.output_size].copy()
        expected = np.empty(d, dtype=F32)
        temperature = temperatures[slot % len(temperatures)]
        Sampler(raw, engine.mixtures, d, temperature, engine.sigma_epsilon, engine.scale).sample(
            choices[slot, step], noise[slot, step], out=expected
        )
        assert np.array_equal(generated[slot, step], expected), row
        assert steps[slot] == step + 1 and total[slot] == float(expected[-1])
        assert 0.0 <= expected[0] <= 1.0 and 0.0 <= expected[1] <= 1.0 and expected[2] >= F32(MIN_DT)
        if row != 7:
            assert np.array_equal(z[row, :d], expected * F32(engine.scale))


@pytest.mark.exact
def test_feeding_gives_conditioning_rows_their_next_event_and_lists_the_rows_that_draw():
    d = 3
    slots = np.array([2, 0, 1, 3], dtype=np.int64)
    pos = np.array([0, 4, 2, 5], dtype=np.int64)  # by slot
    rows = np.array([5, 4, 3, 5], dtype=np.int64)
    scaled = np.arange(4 * 5 * d, dtype=F32).reshape(4, 5, d)
    z = np.full((4, d + 2), -1.0, dtype=F32)
    sampling = np.full(4, -1, dtype=np.int64)
    count = feed_rows(z, slots, 4, pos, rows, scaled, sampling)
    # row 0 (slot 2): its last event (pos 2 of 3): fed, and draws; row 1 (slot 0): event 0 of 5, conditioning;
    # row 2 (slot 1): done conditioning, draws, not fed; row 3 (slot 3): done, draws.
    assert count == 3 and list(sampling[:count]) == [0, 2, 3]
    assert np.array_equal(z[0, :d], scaled[2, 2]) and np.array_equal(z[1, :d], scaled[0, 0])
    assert (z[2] == -1.0).all() and (z[3] == -1.0).all()
    assert list(pos) == [1, 4, 3, 5]


@pytest.mark.exact
@pytest.mark.parametrize("gates", ["sigmoid", "hard_sigmoid"])
def test_the_batched_cell_is_the_engine_cell_bit_for_bit(tmp_path, gates):
    """numpy tanh around the compiled gate and output steps (sigmoid), or the engine's own hard_sigmoid cell: every
    row equals the engine's one-row `cell`."""
    from service.engine import BatchState

    path = write_random_artifact(tmp_path / "w.npz", units=16, mixtures=5, lstm_recurrent_activation=gates)
    engine = Engine.load(path)
    assert engine.recurrent_activation == gates
    rng = np.random.default_rng(8)
    state, n = BatchState(engine, 8), 6
    u, lo = engine.units, state.h_starts[1]
    state.g[:n] = rng.standard_normal((n, 4 * u)).astype(F32) * 3
    state.c[1, :n] = rng.standard_normal((n, u)).astype(F32)
    g_before, c_before = state.g[:n].copy(), state.c[1, :n].copy()
    engine.cell_rows(state, 1, n)
    for row in range(n):
        alone = BatchState(engine, 1)
        alone.g[0], alone.c[1, 0] = g_before[row], c_before[row]
        engine.cell(alone, 0, 1)
        assert np.array_equal(state.c[1, row], alone.c[1, 0]) and np.array_equal(
            state.z[row, lo : lo + u], alone.z[0, lo : lo + u]
        )
        assert alone.z[0, lo : lo + u].any()  # the cell wrote its h


def test_the_cells_tanh_is_within_a_few_ulp_of_numpys_and_keeps_nan_and_infinity():
    """The compiled cell's tanh (a rational function): within 4e-7 of float64 tanh over the whole float32 range that
    matters, exactly +-1 far out, exact (x itself) near 0, NaN for NaN."""
    x = np.concatenate([np.linspace(-12, 12, 400_001), [0.0, 1e-30, -3e-4, np.inf, -np.inf, np.nan, 1e30]]).astype(F32)
    out = np.full((1, x.size), 7.0, dtype=F32)
    tanh_rows(x[None].copy(), out, 1)
    got, expected = out[0], np.tanh(x.astype(np.float64))
    finite = np.isfinite(x)
    assert np.abs(got[finite] - expected[finite]).max() <= 4e-7
    assert got[-4] == 1.0 and got[-3] == -1.0 and np.isnan(got[-2]) and got[-1] == 1.0
    assert got[-7] == 0.0 and got[-6] == F32(1e-30) and got[-5] == F32(-3e-4)


def borderline_choices(logits: np.ndarray) -> np.ndarray:
    """Per row, the uniform at which Sampler.choose (temperature 1) moves from the first mixture to the second:
    there the choice turns on the last bits of the weights and of their sum."""
    weights = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    return weights[:, 0] / weights.sum(axis=1)


@pytest.mark.exact
def test_every_compiled_touch_is_the_samplers_to_the_last_bit(engine):
    """Thousands of draws at the service's sigma temperature, means inside [0, 1] so nothing is clipped and a sigma's
    last bit reaches the touch, half of them with a uniform on a mixture's border, and a row whose weights Python
    3.12's compensated sum() adds to another total: each touch equals Sampler.sample's. (NumPy's SIMD expm1 and
    libm's expm1f disagree in the last bit for about one negative input in four; a float32 `logit - top` rounds where
    the Sampler's float64 one does not.)"""
    rng = np.random.default_rng(11)
    d, rows_total, md = engine.dimension, 4096, engine.mixtures * engine.dimension
    out = rng.standard_normal((rows_total, engine.output_size)).astype(F32)
    out[:, :md] = rng.uniform(0.2, 0.8, (rows_total, md)) * engine.scale
    out[:, md : 2 * md] = rng.uniform(-4.0, 1.0, (rows_total, md))
    choices = rng.random((rows_total, MAX_STEPS))
    choices[::2, 0] = borderline_choices(out[::2, 2 * md :])
    out[0, 2 * md :] = [0.0, -37.0, -37.0, -37.0, -37.0]  # weights 1 and 4 x ~8.5e-17: plain sum 1, compensated more
    choices[0, 0] = 1.0 - 2.0**-53  # the largest uniform Generator.random gives
    noise = (rng.standard_normal((rows_total, MAX_STEPS, d)) * np.sqrt(0.1)).astype(F32)
    generated = np.zeros((rows_total, MAX_STEPS, d), dtype=F32)
    rows = np.arange(rows_total, dtype=np.int64)
    steps, total, seconds = np.zeros(rows_total, dtype=np.int64), np.zeros(rows_total), np.full(rows_total, np.inf)
    sample_rows(
        out, rows, rows, engine.mixtures, F32(engine.scale), F32(engine.sigma_epsilon), choices, noise, generated,
        steps, total, seconds, np.ones(rows_total), np.zeros((rows_total, d), dtype=F32), np.zeros(rows_total, bool),
    )  # fmt: skip
    expected = np.empty((rows_total, d), dtype=F32)
    for row in rows:
        sampler = Sampler(out[row].copy(), engine.mixtures, d, 1.0, engine.sigma_epsilon, engine.scale)
        sampler.sample(choices[row, 0], noise[row, 0], out=expected[row])
    assert np.array_equal(generated[:, 0], expected), np.flatnonzero((generated[:, 0] != expected).any(axis=1))
