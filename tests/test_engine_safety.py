"""The engine is safe to share: concurrent calls, separate generators, read-only weights, refused arguments."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from devtools.performances import typical_events
from devtools.random_weights import write_random_artifact
from service.engine import MIN_DT, Engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return Engine.load(write_random_artifact(tmp_path_factory.mktemp("w") / "w.npz", units=64, layers=2))


@pytest.mark.exact
def test_concurrent_calls_equal_their_sequential_results(engine):
    jobs = [(typical_events(30 + 10 * i, seed=i), 100 + i) for i in range(8)]
    weights_before = [w.copy() for w in engine.weight_arrays()]
    sequential = [engine.continue_performance(ev, rng=np.random.default_rng(seed)) for ev, seed in jobs]
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        events, seed = jobs[i]
        barrier.wait()
        results[i] = [engine.continue_performance(events, rng=np.random.default_rng(seed)) for _ in range(3)]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for expected, got in zip(sequential, results, strict=True):
        assert all(np.array_equal(expected, g) for g in got)
    assert all(np.array_equal(a, b) for a, b in zip(weights_before, engine.weight_arrays(), strict=True))


@pytest.mark.exact
def test_interleaved_generators_do_not_share_state(engine):
    # Two requests whose generators are drawn from alternately equal the same requests run alone.
    events = typical_events(40)
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(8)
    a1 = engine.continue_performance(events, rng=rng_a)
    b1 = engine.continue_performance(events, rng=rng_b)
    a2 = engine.continue_performance(events, rng=rng_a)
    b2 = engine.continue_performance(events, rng=rng_b)
    solo_a, solo_b = np.random.default_rng(7), np.random.default_rng(8)
    assert np.array_equal(a1, engine.continue_performance(events, rng=solo_a))
    assert np.array_equal(a2, engine.continue_performance(events, rng=solo_a))
    assert np.array_equal(b1, engine.continue_performance(events, rng=solo_b))
    assert np.array_equal(b2, engine.continue_performance(events, rng=solo_b))


def test_engine_weights_are_read_only(engine):
    weights = engine.weight_arrays()
    assert len(weights) == 4 * engine.layers + 2  # stacked, input and recurrent views, biases; head, head bias
    for w in weights:
        with pytest.raises(ValueError):
            w[...] = 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"events": np.zeros((0, 3), np.float32)}, "shape"),
        ({"events": np.zeros((5, 2), np.float32)}, "shape"),
        ({"events": np.array([[0.1, np.nan, 0.0]], np.float32)}, "finite"),
        ({"seconds": 0.0}, "seconds"),
        ({"seconds": float("inf")}, "seconds"),
        ({"temperature": -1.0}, "temperature"),
        ({"sigma_temperature": float("nan")}, "sigma_temperature"),
        ({"seconds": True}, "seconds"),
    ],
)
def test_bad_arguments_raise_value_error(engine, kwargs, message):
    call = {"events": typical_events(5), "rng": np.random.default_rng(0), **kwargs}
    events = call.pop("events")
    with pytest.raises(ValueError, match=message):
        engine.continue_performance(events, **call)


def test_extreme_but_finite_events_still_give_valid_rows(engine):
    rows = engine.continue_performance(np.full((5, 3), 1e37, np.float32), rng=np.random.default_rng(0))
    assert np.isfinite(rows).all() and rows[:, :2].min() >= 0 and rows[:, :2].max() <= 1
    assert rows[:, 2].min() >= np.float32(MIN_DT)
    with pytest.raises(ValueError, match="too large"):
        engine.continue_performance(np.full((5, 3), 1e38, np.float32), rng=np.random.default_rng(0))


def test_rng_must_be_a_generator(engine):
    with pytest.raises(TypeError, match="Generator"):
        engine.continue_performance(typical_events(5), rng=np.random.RandomState(0))
