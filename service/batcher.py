"""Continuous (iteration-level) batching: one loop per worker process advances every active request by one LSTM
step per iteration, in one `(B, .)` matrix product per layer, so the weights are read once for all B requests.

Why: one request's step streams all the weights through the core for one matrix-vector product per layer; B
requests in one product share that read (service/batch_kernels.py: a compiled product that really reads them once;
OpenBLAS's sgemm would copy them first). Requests join and leave between iterations (as in LLM servers): a request
that arrives while others are generating starts conditioning at the next iteration, one that reaches its length
leaves at once. Each request keeps its own LSTM state row, its own position and its own `numpy.random.Generator`,
from which it draws all its randomness up front exactly as `Engine.continue_performance` does; the batched draw
(`sample_rows`) uses the engine Sampler's arithmetic. A request alone runs the engine's own loop (`_run_lone`):
conditioning layer by layer a chunk at a time, generation step by step, checking for newcomers in between.

So the same seed and input give the same touches as the unbatched engine: bit for bit for a request that stays
alone, within float32 rounding once it shares iterations (a batched product sums in another order than the engine's
matrix-vector product, and a recurrent network carries such differences on). tests/test_batching.py holds MDN
outputs to 1e-5 (the engine<->Keras tolerance) and replies under 16 concurrent requests of mixed lengths to 1e-4.

`max_batch=1` turns batching off: the loop then runs each request alone through `Engine.continue_performance`
(bit-identical to the unbatched engine), one at a time, which is also the fair baseline for `make bench-load`.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable

import numpy as np

from service.engine import CHUNK, MAX_STEPS, Engine, Sampler, _Workspace, hard_sigmoid_cell

F32 = np.float32


class _Job:
    """One request in the loop: its scaled input, its draws, its progress and its result."""

    __slots__ = (
        "scaled", "seconds", "inv_temperature", "choices", "noise", "generated", "pos", "steps", "total",
        "done", "result", "error", "cancelled", "events", "temperature", "sigma_temperature", "rng", "out",
        "sampler", "rows", "slot",
    )  # fmt: skip

    def __init__(self, events, seconds, temperature, sigma_temperature, rng):
        self.events, self.temperature, self.sigma_temperature, self.rng = events, temperature, sigma_temperature, rng
        self.seconds = float(seconds)
        self.done = threading.Event()
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None
        self.cancelled = False
        self.pos, self.steps, self.total = 0, 0, 0.0

    def prepare(self, engine: Engine) -> None:
        """The same scaling and up-front draws as Engine.continue_performance (done in the request's thread)."""
        self.scaled = engine.scale_events(self.events)
        self.rows = len(self.scaled)
        self.choices, self.noise = engine.draw(self.rng, self.sigma_temperature)
        with np.errstate(over="ignore"):
            self.inv_temperature = 1.0 / float(self.temperature)  # inf for a subnormal temperature: argmax
        self.out = np.empty(engine.output_size, dtype=F32)  # this request's MDN output, for its own Sampler
        self.sampler = Sampler(
            self.out, engine.mixtures, engine.dimension, self.temperature, engine.sigma_epsilon, engine.scale
        )

    def finish(self, result: np.ndarray | None = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


class _Batch:
    """The loop's state for up to `capacity` requests.

    Rows 0..B-1 of the network arrays (`z`, `c`, `g`, `out`) belong to the active jobs and move when a job leaves;
    each job also holds a fixed slot (`slots[row]`) in the per-request arrays the compiled draw reads and writes
    (its draws, touches, step count, dt total, length and 1/temperature), so those never move.
    """

    def __init__(self, engine: Engine, capacity: int):
        u, d, layers = engine.units, engine.dimension, engine.layers
        self.z = np.zeros((capacity, d + layers * u), dtype=F32)  # per row [x, h_0, ..., h_{L-1}], as the engine
        self.c = np.zeros((layers, capacity, u), dtype=F32)
        self.g = np.empty((capacity, 4 * u), dtype=F32)
        self.tmp = np.empty((capacity, u), dtype=F32)
        self.out = np.empty((capacity, engine.output_size), dtype=F32)
        self.inputs = [(0, d + u)] + [(d + (i - 1) * u, d + (i + 1) * u) for i in range(1, layers)]
        self.h = [(d + i * u, d + (i + 1) * u) for i in range(layers)]
        self.jobs: list[_Job] = []
        self.slots = np.zeros(capacity, dtype=np.int64)
        self.free = list(range(capacity - 1, -1, -1))
        self.choices = np.zeros((capacity, MAX_STEPS))
        self.noise = np.zeros((capacity, MAX_STEPS, d), dtype=F32)
        self.generated = np.zeros((capacity, MAX_STEPS, d), dtype=F32)
        self.steps = np.zeros(capacity, dtype=np.int64)
        self.total, self.seconds, self.inv_temperature = np.zeros(capacity), np.zeros(capacity), np.zeros(capacity)
        self.finished = np.zeros(capacity, dtype=bool)
        self.pos, self.rows = np.zeros(capacity, dtype=np.int64), np.zeros(capacity, dtype=np.int64)
        self.scaled = np.zeros((capacity, 0, d), dtype=F32)  # each slot's conditioning input, grown as needed
        self.sampling = np.zeros(capacity, dtype=np.int64)  # the rows that draw in this iteration

    def add(self, job: _Job) -> None:
        row, slot = len(self.jobs), self.free.pop()
        self.z[row] = 0.0
        self.c[:, row] = 0.0
        self.slots[row], job.slot = slot, slot
        self.choices[slot], self.noise[slot] = job.choices, job.noise
        job.choices, job.noise, job.generated = self.choices[slot], self.noise[slot], self.generated[slot]  # views
        self.steps[slot], self.total[slot] = job.steps, job.total
        self.seconds[slot], self.inv_temperature[slot] = job.seconds, job.inv_temperature
        if job.rows > self.scaled.shape[1]:
            grown = np.zeros((len(self.slots), job.rows, self.scaled.shape[2]), dtype=F32)
            grown[:, : self.scaled.shape[1]] = self.scaled
            self.scaled = grown
        self.scaled[slot, : job.rows] = job.scaled
        self.pos[slot], self.rows[slot] = job.pos, job.rows
        self.jobs.append(job)

    def remove(self, row: int) -> None:
        """Drop the job in `row`, moving the last active job's state into it (rows stay 0..B-1)."""
        last = len(self.jobs) - 1
        self.free.append(int(self.slots[row]))
        if row != last:
            self.z[row] = self.z[last]
            self.c[:, row] = self.c[:, last]
            self.jobs[row] = self.jobs[last]
            self.slots[row] = self.slots[last]
        self.jobs.pop()


class Batcher:
    """The per-process batching loop; `generate` is called from request threads and blocks until done."""

    def __init__(
        self,
        engine: Engine,
        max_batch: int = 32,
        wait_seconds: float = 0.002,
        observe_batch: Callable[[int], None] | None = None,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}.")
        self.engine, self.max_batch, self.wait_seconds = engine, max_batch, wait_seconds
        self.batched = max_batch > 1 and isinstance(engine, Engine)  # anything else runs alone (test doubles)
        self._observe_batch = observe_batch
        self._cond = threading.Condition()
        self._pending: deque[_Job] = deque()
        self._arriving = 0
        self._pid: int | None = None
        if self.batched:
            # Imported only where batching is on: Numba's compiler costs ~50 MB of RSS and ~2 s at start.
            from service import batch_kernels

            self._kernels = batch_kernels
            self._transposed = [batch_kernels.transposed(w) for w in engine._stacked]  # the kernel's layout, once
            self._head = batch_kernels.transposed(engine._head)
            self._lone = _Workspace(engine, CHUNK)  # a lone request's state (used by the loop thread only)

    # ---- request side ----------------------------------------------------------------------------------

    def arriving(self) -> _Arrival:
        """Context for a request on its way (being parsed): the loop may wait a moment for it to join."""
        return _Arrival(self)

    def generate(
        self,
        events: np.ndarray,
        *,
        seconds: float = 5.0,
        temperature: float = 1.5,
        sigma_temperature: float = 0.01,
        rng: np.random.Generator,
        timeout: float | None = None,
    ) -> np.ndarray:
        """Same contract as Engine.continue_performance; TimeoutError if not finished within `timeout` s."""
        if self.batched:  # alone, continue_performance checks its arguments itself
            events = self.engine.check_request(events, seconds, temperature, sigma_temperature, rng)
        job = _Job(events, seconds, temperature, sigma_temperature, rng)
        if self.batched:
            job.prepare(self.engine)
        self._start()
        with self._cond:
            self._pending.append(job)
            self._cond.notify()
        if not job.done.wait(timeout):
            job.cancelled = True  # the loop drops it at its next iteration
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

    def _take(self, batch: _Batch | None) -> list[_Job]:
        """New jobs for free rows; blocks while there is nothing to do at all."""
        active = len(batch.jobs) if batch is not None else 0
        with self._cond:
            while not self._pending and active == 0:
                self._cond.wait()
            if active == 0 and self._arriving and self.wait_seconds > 0 and self.batched:
                # Starting from idle while other requests are being parsed: a moment's wait lets them share.
                self._cond.wait_for(lambda: not self._arriving, timeout=self.wait_seconds)
            taken = []
            while self._pending and active + len(taken) < self.max_batch:
                job = self._pending.popleft()
                if not job.cancelled:
                    taken.append(job)
            return taken

    def _loop(self) -> None:
        batch = _Batch(self.engine, self.max_batch) if self.batched else None
        while True:
            jobs = self._take(batch)
            if batch is None:
                for job in jobs:
                    self._run_alone(job)
                continue
            added = 0
            try:
                for job in jobs:
                    batch.add(job)
                    added += 1
                self._iterate(batch)
            except Exception as exc:  # fail the requests in (and joining) the batch, keep the loop serving
                for job in jobs[added:]:
                    job.finish(error=exc)
                for row in range(len(batch.jobs) - 1, -1, -1):
                    batch.jobs[row].finish(error=exc)
                    batch.remove(row)  # frees its slot

    def _run_alone(self, job: _Job) -> None:
        if self._observe_batch is not None:
            self._observe_batch(1)
        try:
            result = self.engine.continue_performance(
                job.events,
                seconds=job.seconds,
                temperature=job.temperature,
                sigma_temperature=job.sigma_temperature,
                rng=job.rng,
            )
        except Exception as exc:
            job.finish(error=exc)
        else:
            job.finish(result)

    def _iterate(self, batch: _Batch) -> int:
        """One LSTM step for every active job, then a draw for every job that has finished conditioning.

        Returns the number of LSTM steps taken: one per job, or, alone, those its own loop took (see _run_lone)."""
        engine, jobs = self.engine, batch.jobs
        for row in range(len(jobs) - 1, -1, -1):
            if jobs[row].cancelled:
                batch.remove(row)
        n = len(jobs)
        if n == 0:
            return 0
        if self._observe_batch is not None:
            self._observe_batch(n)
        if n == 1 and not self._pending:
            return self._run_lone(batch, jobs[0])
        drawing = self._kernels.feed_rows(batch.z, batch.slots, n, batch.pos, batch.rows, batch.scaled, batch.sampling)
        for layer, (lo, _) in enumerate(batch.inputs):  # each reads the weights once for all n rows
            self._kernels.matmul_rows(batch.z, lo, n, self._transposed[layer], engine._biases[layer], batch.g)
            self._cell(batch, layer, n)
        self._kernels.matmul_rows(batch.z, batch.h[-1][0], n, self._head, engine._head_bias, batch.out)

        if drawing:
            self._sample(batch, batch.sampling[:drawing])
        return n

    def _run_lone(self, batch: _Batch, job: _Job) -> int:
        """A lone request runs the engine's own code on its own workspace until company arrives or it is done.

        Alone, a request gains nothing from the batch's `(B, .)` arrays, and the engine's loop is leaner: it
        conditions layer by layer (each layer's weights stay in cache for a whole chunk, as in Engine._condition)
        and generates with the engine's step and Sampler, so its reply is the engine's, bit for bit. Conditioning
        goes a chunk (CHUNK rows) at a time and generation checks for newcomers after every step, so a
        request that arrives meanwhile joins within a few milliseconds; the state then moves back into row 0.
        Returns the number of LSTM steps taken. The whole run is one observation of batch size 1 (made by
        _iterate): observing every step cost the lone request 1-5 %.
        """
        engine, ws = self.engine, self._lone
        ws.z[:] = batch.z[0]
        ws.c[:] = batch.c[:, 0]
        job.pos, job.steps, job.total = (
            int(batch.pos[job.slot]),
            int(batch.steps[job.slot]),
            float(batch.total[job.slot]),
        )
        ws.out = job.out  # the engine writes the head's output where the job's own Sampler reads it
        if job.pos < job.rows:  # conditioning: one chunk, then the head's output and the first draw
            start = job.pos
            job.pos = min(job.rows, start + CHUNK)
            engine._condition(ws, job.scaled[start : job.pos])
            taken = job.pos - start
            if job.pos < job.rows:
                self._store_lone(batch, job)
                return taken
            engine._head_into(ws)
            if self._draw_lone(batch, job):
                return taken
        else:
            taken = 0
        while True:  # generating: the engine's step and draw until done, cancelled or joined
            if job.cancelled or self._pending:
                self._store_lone(batch, job)
                return taken
            engine._step(ws)
            taken += 1
            if self._draw_lone(batch, job):
                return taken

    def _draw_lone(self, batch: _Batch, job: _Job) -> bool:
        """The lone job's next touch from `job.out` (as Engine.continue_performance); True once it has finished."""
        touch = job.generated[job.steps]
        job.sampler.sample(job.choices[job.steps], job.noise[job.steps], out=touch)
        job.steps += 1
        job.total += touch.item(self.engine.dimension - 1)
        if job.total >= job.seconds or job.steps >= MAX_STEPS:
            job.finish(job.generated[: job.steps].copy())
            batch.remove(0)
            return True
        np.multiply(touch, job.sampler.scale, out=self._lone.x)  # feed the touch back, in the scaled space
        return False

    def _store_lone(self, batch: _Batch, job: _Job) -> None:
        """Move the lone workspace's state and the job's progress back into the batch (a newcomer may join)."""
        batch.z[0] = self._lone.z
        batch.c[:, 0] = self._lone.c
        batch.pos[job.slot], batch.steps[job.slot], batch.total[job.slot] = job.pos, job.steps, job.total

    def _cell(self, batch: _Batch, layer: int, n: int) -> None:
        """Vectorised LSTM cell for rows 0..n-1: the engine `_Workspace.cell`'s operations, in its order."""
        g, c, tmp = batch.g, batch.c[layer], batch.tmp
        if self.engine.recurrent_activation == "hard_sigmoid":  # Keras 2's gates: the engine's own NumPy code
            hard_sigmoid_cell(g[:n], c[:n], tmp[:n], self.engine.units)
        else:
            np.tanh(g[:n], out=g[:n])
            self._kernels.gates_rows(g, c, n)
        np.tanh(c[:n], out=tmp[:n])
        self._kernels.output_rows(g, tmp, batch.z, batch.h[layer][0], n)

    def _sample(self, batch: _Batch, rows: np.ndarray) -> None:
        """RoboJam's draw for the given rows (compiled); finished jobs leave the batch, the others' touches are
        already fed back into their rows of `z`."""
        engine = self.engine
        done = self._kernels.sample_rows(
            batch.out, rows, batch.slots, engine.mixtures, F32(engine.scale),
            F32(engine.sigma_epsilon), batch.choices, batch.noise, batch.generated, batch.steps, batch.total,
            batch.seconds, batch.inv_temperature, batch.z, batch.finished,
        )  # fmt: skip
        if not done:
            return
        for row in sorted((int(row) for row in rows if batch.finished[row]), reverse=True):
            batch.finished[row] = False
            job, slot = batch.jobs[row], batch.slots[row]
            job.finish(batch.generated[slot, : batch.steps[slot]].copy())
            batch.remove(row)


class _Arrival:
    def __init__(self, batcher: Batcher):
        self._batcher = batcher

    def __enter__(self) -> None:
        with self._batcher._cond:
            self._batcher._arriving += 1

    def __exit__(self, *exc) -> None:
        with self._batcher._cond:
            self._batcher._arriving -= 1
            self._batcher._cond.notify_all()
