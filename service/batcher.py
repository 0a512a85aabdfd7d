"""Continuous (iteration-level) batching: one loop per worker process decides who joins, who leaves and how long to
wait; the engine does the math (service/engine.py: `BatchState`, `run_alone`, `step_rows`).

Why: one request's step streams all the weights through the core for one matrix-vector product per layer; B
requests in one `Engine.step_rows` share that read. Requests join and leave between iterations (as in LLM servers):
a request that arrives while others are generating starts conditioning at the next iteration, one that reaches its
length leaves at once. Each request keeps its own state row and slot (its input, draws, touches and progress live
there, nowhere else) and draws all its randomness up front from its own `numpy.random.Generator`
(`Engine.prepare`), exactly as `Engine.continue_performance` does. A request alone runs the engine's own loop
(`Engine.run_alone`: conditioning a chunk at a time, generation step by step), and the loop interrupts it when
company arrives.

So the same seed and input give the same touches as the unbatched engine: bit for bit for a request that stays
alone (it runs the engine's code), within float32 rounding once it shares iterations (a batched product sums in
another order than the engine's matrix-vector product, and a recurrent network carries such differences on).
tests/test_batching.py holds MDN outputs to 1e-5 (the engine<->Keras tolerance) and replies under 16 concurrent
requests of mixed lengths to 1e-4.

`BatchPolicy(max_batch=1)` turns batching off: the loop then runs each request alone through
`Engine.continue_performance` (bit-identical to the unbatched engine), one at a time, which is also the fair
baseline for `make bench-load`.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import deque
from collections.abc import Callable

import numpy as np

from service.engine import DEFAULT_SIGMA_TEMPERATURE, DEFAULT_TEMPERATURE, BatchState, Engine, Request
from service.settings import BatchPolicy


class _Job:
    """One request in the loop: what to run (a prepared `Request`, or alone a call), and its outcome.

    `done` is a lock held from the start and released once, by `finish`: the request thread's `wait` acquires it.
    A bare lock, not a threading.Event, whose Condition costs a hand-off several Python-level lock operations.
    """

    __slots__ = ("request", "call", "done", "result", "error", "cancelled")

    def __init__(self, request: Request | None = None, call: Callable[[], np.ndarray] | None = None):
        self.request, self.call = request, call
        self.done = threading.Lock()
        self.done.acquire()
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None
        self.cancelled = False

    def finish(self, result: np.ndarray | None = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.done.release()

    def wait(self, timeout: float | None) -> bool:
        """Whether the job finished within `timeout` seconds (None: however long it takes)."""
        return self.done.acquire(timeout=-1 if timeout is None else max(timeout, 0))


class _Active:
    """The jobs in the loop: the engine's batch state, and by slot the job whose request is in it."""

    def __init__(self, engine: Engine, capacity: int):
        self.state = BatchState(engine, capacity)
        self._jobs: list[_Job | None] = [None] * capacity

    def __len__(self) -> int:
        return self.state.active

    def add(self, job: _Job) -> None:
        self._jobs[self.state.add(job.request)] = job
        job.request = None  # copied into its slot

    def job(self, row: int) -> _Job:
        return self._jobs[self.state.slot(row)]

    def leave(self, row: int, error: BaseException | None = None) -> None:
        """The job in `row` leaves: with its touches, or with `error`."""
        slot = self.state.slot(row)
        job, self._jobs[slot] = self._jobs[slot], None
        if error is not None:
            job.finish(error=error)
        elif not job.cancelled:
            job.finish(self.state.result(slot))
        self.state.remove(row)


class Batcher:
    """The per-process batching loop; `generate` is called from request threads and blocks until done."""

    def __init__(
        self,
        engine: Engine,
        policy: BatchPolicy | None = None,
        observe_batch: Callable[[int], None] | None = None,
    ):
        self.engine, self.policy = engine, policy or BatchPolicy()
        self.batched = self.policy.batched and isinstance(engine, Engine)  # anything else runs alone (test doubles)
        self._observe_batch = observe_batch
        self._cond = threading.Condition()
        self._pending: deque[_Job] = deque()
        self._arriving = 0
        self._awaiting_arrivals = False  # the loop waits for requests being parsed (only then is one's end news)
        self._cancelled = False  # some job was cancelled since the loop last looked
        self._pid: int | None = None

    # ---- request side ----------------------------------------------------------------------------------

    def arriving(self) -> _Arrival:
        """Context for a request on its way (being parsed): the loop may wait a moment for it to join."""
        return _Arrival(self)

    def generate(
        self,
        events: np.ndarray,
        *,
        seconds: float = 5.0,
        temperature: float = DEFAULT_TEMPERATURE,
        sigma_temperature: float = DEFAULT_SIGMA_TEMPERATURE,
        rng: np.random.Generator,
        timeout: float | None = None,
    ) -> np.ndarray:
        """Same contract as Engine.continue_performance; TimeoutError if not finished within `timeout` s."""
        if self.batched:  # checked, scaled and drawn here, in the request's thread: bad arguments never join
            job = _Job(request=self.engine.prepare(events, seconds, temperature, sigma_temperature, rng))
        else:  # alone, continue_performance checks its arguments itself
            options = {"seconds": seconds, "temperature": temperature, "sigma_temperature": sigma_temperature}
            job = _Job(call=functools.partial(self.engine.continue_performance, events, rng=rng, **options))
        self._start()
        with self._cond:
            self._pending.append(job)
            self._cond.notify()
        if not job.wait(timeout):
            job.cancelled = True  # the loop drops it at its next iteration
            self._cancelled = True
            raise TimeoutError("the request was not finished in time.")
        if job.error is not None:
            raise job.error
        return job.result

    def _start(self) -> None:
        """Start this process's loop thread (a forked worker inherits the object, not the thread)."""
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._cond:
            if self._pid == pid:
                return
            self._pid, self._pending = pid, deque()
            threading.Thread(target=self._loop, name="robojam-batcher", daemon=True).start()

    # ---- loop side -------------------------------------------------------------------------------------

    def _take(self, active: int) -> list[_Job]:
        """New jobs for free rows; blocks while there is nothing to do at all."""
        policy = self.policy
        with self._cond:
            while not self._pending and active == 0:
                self._cond.wait()
            if active == 0 and self._arriving and policy.wait_seconds > 0 and self.batched:
                # Starting from idle while other requests are being parsed: a moment's wait lets them share.
                self._awaiting_arrivals = True
                try:
                    self._cond.wait_for(lambda: not self._arriving, timeout=policy.wait_seconds)
                finally:
                    self._awaiting_arrivals = False
            taken = []
            while self._pending and active + len(taken) < policy.max_batch:
                job = self._pending.popleft()
                if not job.cancelled:
                    taken.append(job)
            return taken

    def _loop(self) -> None:
        if not self.batched:
            while True:
                for job in self._take(0):
                    self._run_alone(job)
        active = _Active(self.engine, self.policy.max_batch)  # this process's own: state is never forked mid-use
        while True:
            jobs = self._take(len(active))
            added = 0
            try:
                for job in jobs:
                    active.add(job)
                    added += 1
                self._iterate(active)
            except Exception as exc:  # fail the requests in (and joining) the batch, keep the loop serving
                for job in jobs[added:]:
                    job.finish(error=exc)
                for row in range(len(active) - 1, -1, -1):
                    active.leave(row, error=exc)  # frees its slot

    def _run_alone(self, job: _Job) -> None:
        if self._observe_batch is not None:
            self._observe_batch(1)
        try:
            result = job.call()
        except Exception as exc:
            job.finish(error=exc)
        else:
            job.finish(result)

    def _iterate(self, active: _Active) -> None:
        """Drop cancelled jobs, then one step for every active job (`Engine.step_rows`), or, for a job alone with
        nobody waiting, the engine's own loop until it is done or company arrives (`Engine.run_alone`: the whole
        run is one observation of batch size 1; observing every step cost a lone request 1-5 %)."""
        state = active.state
        if self._cancelled:  # rare (timeouts): looked for only then, not in every iteration
            self._cancelled = False
            for row in range(len(active) - 1, -1, -1):
                if active.job(row).cancelled:
                    active.leave(row)
        n = len(active)
        if n == 0:
            return
        if self._observe_batch is not None:
            self._observe_batch(n)
        if n == 1 and not self._pending:
            job = active.job(0)
            if self.engine.run_alone(state, 0, interrupted=lambda: job.cancelled or bool(self._pending)):
                active.leave(0)
            return
        for row in self.engine.step_rows(state):  # highest first: leaving never moves a row still to leave
            active.leave(row)


class _Arrival:
    def __init__(self, batcher: Batcher):
        self._batcher = batcher

    def __enter__(self) -> None:
        with self._batcher._cond:
            self._batcher._arriving += 1

    def __exit__(self, *exc) -> None:
        batcher = self._batcher
        with batcher._cond:
            batcher._arriving -= 1
            if batcher._awaiting_arrivals and not batcher._arriving:  # else nobody waits on it: no thread woken
                batcher._cond.notify_all()
