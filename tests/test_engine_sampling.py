"""RoboJam's sampling in the engine: the tempered mixture, clipping, the step cap, the requested length, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from support.fixed_mixture import fixed_mixture_artifact

from devtools.performances import typical_events
from devtools.random_weights import write_random_artifact
from service.engine import MAX_STEPS, MIN_DT, Engine, Sampler

# ---- on a model whose MDN output is known exactly ---------------------------------------------------------------


@pytest.mark.parametrize(("temperature", "sigma_temperature"), [(1.5, 0.01), (0.5, 0.04)])
def test_samples_follow_the_tempered_mixture(tmp_path, temperature, sigma_temperature):
    engine = Engine.load(fixed_mixture_artifact(tmp_path))
    rows = np.concatenate(
        [
            engine.continue_performance(
                typical_events(20),
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
    rows = engine.continue_performance(typical_events(10), seconds=5.0, rng=np.random.default_rng(0))
    assert rows.shape == (MAX_STEPS, 3) and rows.dtype == np.float32
    assert set(np.unique(rows[:, 0])) == {0.0, 1.0}
    assert np.all(rows[:, 2] == np.float32(MIN_DT))


@pytest.mark.exact
def test_sampling_an_activated_output_equals_sampling_the_raw_one():
    """Sampler.sample_activated (the benchmark's entry for Keras outputs) draws what sample draws from raw sigmas."""
    rng = np.random.default_rng(5)
    mixtures, d = 4, 3
    raw = rng.normal(0.0, 2.0, 2 * mixtures * d + mixtures).astype(np.float32)
    sampler = Sampler(raw, mixtures, d, 1.5, 1e-7, 10.0)
    activated = raw.copy()
    for begin in range(mixtures * d, 2 * mixtures * d, d):  # one mixture's sigmas at a time, as the sampler does
        sampler.sigma_into(raw[begin : begin + d], activated[begin : begin + d])
    assert not np.array_equal(activated, raw)
    for _ in range(50):
        u, noise = rng.random(), rng.standard_normal(d).astype(np.float32) * np.float32(0.1)
        expected, got = np.empty(d, np.float32), np.empty(d, np.float32)
        sampler.sample(u, noise, out=expected)
        sampler.sample_activated(activated, u, noise, out=got)
        np.testing.assert_array_equal(got, expected)


# ---- generation contract on a random 2-layer model --------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return Engine.load(write_random_artifact(tmp_path_factory.mktemp("w") / "w.npz", units=64, layers=2))


@pytest.mark.parametrize("seconds", [0.5, 5.0, 10.0])
@pytest.mark.parametrize("n_events", [1, 100])
def test_continuation_is_constrained_and_lasts_the_requested_time(engine, seconds, n_events):
    for seed in range(5):
        events, rng = typical_events(n_events, seed), np.random.default_rng(seed)
        rows = engine.continue_performance(events, seconds=seconds, rng=rng)
        assert rows.dtype == np.float32 and rows.ndim == 2 and rows.shape[1] == 3 and 1 <= len(rows) <= MAX_STEPS
        assert np.isfinite(rows).all()
        assert rows[:, :2].min() >= 0.0 and rows[:, :2].max() <= 1.0
        assert rows[:, 2].min() >= np.float32(MIN_DT)
        total = rows[:, 2].astype(np.float64).sum()
        assert len(rows) == MAX_STEPS or seconds <= total <= seconds + rows[-1, 2] + 1e-9
        assert rows[:-1, 2].astype(np.float64).sum() < seconds  # it stopped at the first touch that reached it


@pytest.mark.exact
def test_same_seed_same_reply_and_different_seeds_differ(engine):
    events = typical_events(50)
    a = engine.continue_performance(events, rng=np.random.default_rng(42))
    b = engine.continue_performance(events, rng=np.random.default_rng(42))
    c = engine.continue_performance(events, rng=np.random.default_rng(43))
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_conditioning_changes_the_continuation(engine):
    a = engine.continue_performance(typical_events(50, seed=1), rng=np.random.default_rng(0))
    b = engine.continue_performance(typical_events(50, seed=2), rng=np.random.default_rng(0))
    assert a.shape != b.shape or not np.array_equal(a, b)
