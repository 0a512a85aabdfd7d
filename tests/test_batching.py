"""The batching loop (service/batcher.py) against the unbatched engine, and admission (service/admission.py)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from devtools.performances import random_performance
from devtools.random_weights import write_random_artifact
from robojam_format.performance import clean, parse_csv
from service.admission import Admission, QueueFull, RateLimited, RateLimiter, client_address, request_cost
from service.batcher import Batcher
from service.engine import MAX_STEPS, BatchState, Engine, Request
from service.settings import BatchPolicy


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    return Engine.load(write_random_artifact(tmp_path_factory.mktemp("b") / "w.npz", units=64, mixtures=5))


@pytest.fixture(scope="module")
def hard_engine(tmp_path_factory) -> Engine:
    """The same weights with Keras 2's hard_sigmoid gates."""
    path = tmp_path_factory.mktemp("h") / "w.npz"
    return Engine.load(write_random_artifact(path, units=64, mixtures=5, lstm_recurrent_activation="hard_sigmoid"))


@pytest.fixture(params=["sigmoid", "hard_sigmoid"])
def either_engine(request) -> Engine:
    return request.getfixturevalue("engine" if request.param == "sigmoid" else "hard_engine")


def mixed_requests(count: int = 16) -> list[tuple[np.ndarray, dict]]:
    """Performances of 1 to ~250 rows and options that differ, so requests join and leave at different times."""
    requests = []
    for i in range(count):
        events = clean(parse_csv(random_performance(seed=i, seconds=0.05 + 0.4 * i)))
        options = {
            "seconds": 0.5 + (i % 5) * 1.5,
            "temperature": (1.5, 0.5, 3.0, 1e-300)[i % 4],
            "sigma_temperature": (0.01, 0.05, 0.2)[i % 3],
        }
        requests.append((events, options))
    return requests


def run_concurrently(batcher: Batcher, requests, seeds) -> list[np.ndarray]:
    results: list[np.ndarray | None] = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def one(index: int) -> None:
        events, options = requests[index]
        start.wait()
        results[index] = batcher.generate(events, rng=np.random.default_rng(seeds[index]), timeout=60, **options)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert all(result is not None for result in results)
    return results


def test_sixteen_concurrent_mixed_requests_equal_the_unbatched_engine(either_engine):
    """Within float32 rounding, not bit for bit: same touches, same count, values to 1e-4 (see batcher.py)."""
    engine = either_engine
    requests, seeds = mixed_requests(), list(range(500, 516))
    assert len({len(events) for events, _ in requests}) >= 12  # mixed lengths
    expected = [
        engine.continue_performance(events, rng=np.random.default_rng(seed), **options)
        for (events, options), seed in zip(requests, seeds, strict=True)
    ]
    sizes = []
    batcher = Batcher(engine, BatchPolicy(max_batch=16), observe_batch=sizes.append)
    got = run_concurrently(batcher, requests, seeds)
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-4)
    assert max(sizes) >= 8  # they really were batched together


@pytest.mark.exact
def test_batching_off_is_bit_identical_to_the_engine(engine):
    requests, seeds = mixed_requests(6), list(range(6))
    batcher = Batcher(engine, BatchPolicy(max_batch=1))
    got = run_concurrently(batcher, requests, seeds)
    for (events, options), seed, mine in zip(requests, seeds, got, strict=True):
        assert np.array_equal(mine, engine.continue_performance(events, rng=np.random.default_rng(seed), **options))


@pytest.mark.exact
def test_a_lone_request_is_bit_identical_to_the_engine(engine):
    """Alone in the loop (no overlap), a request takes the engine's own arithmetic: the same reply exactly."""
    batcher = Batcher(engine, BatchPolicy(max_batch=32))
    for seed in range(6):
        events = clean(parse_csv(random_performance(seed=seed, seconds=0.2 + seed * 1.5)))  # 1 to ~3 chunks
        expected = engine.continue_performance(events, rng=np.random.default_rng(seed))
        assert np.array_equal(batcher.generate(events, rng=np.random.default_rng(seed)), expected)


def test_batched_mdn_outputs_match_the_engine_within_the_keras_tolerance(either_engine):
    """Teacher-forced: rows joining at different iterations give the engine's MDN outputs to 1e-5."""
    engine = either_engine
    rng = np.random.default_rng(3)
    sequences = [rng.uniform(0, 1, size=(40, 3)).astype(np.float32) for _ in range(6)]
    joins = [0, 0, 3, 7, 7, 12]
    state = BatchState(engine, 8)
    outputs = {i: [] for i in range(6)}
    slots = {}
    for step in range(52):
        for i, join in enumerate(joins):
            if join == step:
                scaled = np.vstack([sequences[i], np.zeros((MAX_STEPS, 3), np.float32)])  # never samples
                noise = np.zeros((MAX_STEPS, 3), np.float32)
                slots[i] = state.add(Request(scaled, rng.random(MAX_STEPS), noise, seconds=5.0, temperature=1.5))
        assert engine.step_rows(state) == []
        for i, slot in slots.items():
            if state.fed[slot] <= len(sequences[i]):
                outputs[i].append(state.out[state.row(slot), : engine.output_size].copy())
    assert state.active == 6
    for i, rows in outputs.items():
        mine = np.array(rows[: len(sequences[i])])
        assert len(mine) == len(sequences[i])
        engine.activate_sigmas(mine)
        np.testing.assert_allclose(mine, engine.mdn_outputs(sequences[i], stepwise=True), rtol=0, atol=1e-5)


def test_the_gate_activation_changes_the_replies(engine, hard_engine):
    """Same weights, same seed: sigmoid and hard_sigmoid gates play differently, batched as alone."""
    events = clean(parse_csv(random_performance(seed=4)))
    soft, hard = (
        Batcher(e, BatchPolicy(max_batch=4)).generate(events, rng=np.random.default_rng(1))
        for e in (engine, hard_engine)
    )
    assert soft.shape != hard.shape or np.abs(soft - hard).max() > 1e-2


def test_a_subnormal_temperature_picks_the_top_mixture_like_a_tiny_one(engine):
    events = clean(parse_csv(random_performance(seed=2)))
    for generate in (engine.continue_performance, Batcher(engine, BatchPolicy(max_batch=4)).generate):
        tiny = generate(events, temperature=1e-300, rng=np.random.default_rng(9))
        subnormal = generate(events, temperature=5e-324, rng=np.random.default_rng(9))
        assert np.isfinite(subnormal).all()
        np.testing.assert_allclose(subnormal, tiny, rtol=0, atol=1e-4)


def test_a_request_not_done_in_time_is_dropped_and_the_loop_serves_on(engine):
    batcher = Batcher(engine, BatchPolicy(max_batch=4))
    events = clean(parse_csv(random_performance(seed=4)))
    # Long enough (tens of thousands of LSTM steps) that no scheduling delay of the waiting thread lets it finish
    # inside the timeout, however fast the engine: the wait must run out first.
    many = np.tile(events, (20_000 // len(events) + 1, 1))
    with pytest.raises(TimeoutError):
        batcher.generate(many, seconds=10.0, rng=np.random.default_rng(0), timeout=1e-4)
    assert len(batcher.generate(events, seconds=1.0, rng=np.random.default_rng(0), timeout=60)) > 0


@pytest.mark.exact
def test_a_failing_iteration_fails_its_requests_frees_their_slots_and_the_loop_serves_on(engine):
    """More failures than the batch has slots: a slot not given back would stop the loop at the third."""
    batcher = Batcher(engine, BatchPolicy(max_batch=2))
    events = clean(parse_csv(random_performance(seed=4)))
    original, failures = batcher._iterate, []

    def failing(active):
        if len(failures) < 5:
            failures.append(len(active))
            raise RuntimeError("planted fault")
        return original(active)

    batcher._iterate = failing
    for seed in range(5):
        with pytest.raises(RuntimeError, match="planted fault"):
            batcher.generate(events, seconds=1.0, rng=np.random.default_rng(seed), timeout=30)
    assert failures == [1] * 5
    expected = engine.continue_performance(events, seconds=1.0, rng=np.random.default_rng(9))
    assert np.array_equal(batcher.generate(events, seconds=1.0, rng=np.random.default_rng(9), timeout=30), expected)


def test_bad_arguments_are_refused_before_joining(engine):
    batcher = Batcher(engine, BatchPolicy(max_batch=4))
    with pytest.raises(ValueError, match="events must have shape"):
        batcher.generate(np.zeros((0, 3)), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="temperature must be a finite number"):
        batcher.generate(np.zeros((2, 3)), temperature=float("nan"), rng=np.random.default_rng(0))


# ---- admission ----------------------------------------------------------------------------------------------


def test_request_cost_counts_rows_and_expected_steps():
    assert request_cost(100, 5.0) == 200
    assert request_cost(2000, 10.0) == 2200
    assert request_cost(1, 1000.0) == 1 + MAX_STEPS


def test_the_queue_is_bounded_in_cost_units_and_frees_on_release():
    changes = []
    admission = Admission(500, on_change=lambda n, cost: changes.append((n, cost)))
    first, second = admission.admit(200), admission.admit(300)
    with pytest.raises(QueueFull) as refused:
        admission.admit(1)
    assert refused.value.retry_after >= 1
    with pytest.raises(QueueFull):
        admission.check_room()  # full: refused before the body is read
    with first:
        pass
    assert admission.load == (1, 300)
    admission.check_room()  # 200 free
    with admission.admit(200), second:
        assert admission.load == (2, 500)
    assert admission.load == (0, 0) and changes[-1] == (0, 0)


def test_the_bound_shrinks_when_replies_are_late_and_grows_back():
    now = [0.0]
    admission = Admission(6400, target_seconds=0.5, floor=400, clock=lambda: now[0])
    assert admission.bound == 6400

    def request(seconds: float) -> None:
        with admission.admit(200):
            now[0] += seconds

    with admission.admit(200), admission.admit(200):  # a batch of two, both late: one cut, by a fifth
        now[0] += 0.9
    assert admission.bound == 5120
    for _ in range(40):
        now[0] += 0.3
        request(0.9)
    assert admission.bound == 400  # never below the floor
    first, second = admission.admit(200), admission.admit(200)
    with pytest.raises(QueueFull):
        admission.admit(200)
    with first, second:
        pass  # on time: +50 each
    assert admission.bound == 500
    for _ in range(10):
        request(0.1)
    assert admission.bound == 1000
    for _ in range(1000):
        request(0.1)
    assert admission.bound == 6400  # never above the configured bound
    with admission.admit(2000):  # ten typical requests' work may take ten times as long
        now[0] += 4.0
    assert admission.bound == 6400


def test_by_default_the_bound_keeps_at_least_half_the_capacity():
    now = [0.0]
    admission = Admission(6400, target_seconds=0.5, clock=lambda: now[0])
    for _ in range(50):  # a target the core never meets
        with admission.admit(200):
            now[0] += 2.0
    assert admission.bound == 3200


def test_a_request_alone_is_admitted_whatever_its_cost():
    with Admission(10).admit(5000):
        pass


def test_rate_limit_per_client_with_burst():
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    limiter.check("a")
    limiter.check("a")
    with pytest.raises(RateLimited) as limited:
        limiter.check("a")
    assert limited.value.retry_after == 1
    limiter.check("b")  # another client has its own bucket
    now[0] = 1.0
    limiter.check("a")  # one token back after a second


def test_rate_limiter_memory_is_bounded():
    limiter = RateLimiter(per_minute=60, burst=1, max_clients=100)
    for i in range(1000):
        limiter.check(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter._buckets) == 100


def test_client_address_trusts_the_forwarded_header_only_from_a_trusted_proxy():
    trusted = frozenset({"127.0.0.1"})
    assert client_address("127.0.0.1", "203.0.113.9", trusted) == "203.0.113.9"
    assert client_address("127.0.0.1", "1.2.3.4, 203.0.113.9", trusted) == "203.0.113.9"  # the proxy's own entry
    assert client_address("198.51.100.7", "203.0.113.9", trusted) == "198.51.100.7"  # anyone else: the peer
    assert client_address("127.0.0.1", None, trusted) == "127.0.0.1"
    assert client_address("127.0.0.1", "203.0.113.9", frozenset()) == "127.0.0.1"
