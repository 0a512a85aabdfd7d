"""Continuous (iteration-level) batching: one loop per worker process advances every active request by one LSTM
step per iteration, in one `(B, .)` matrix product per layer, so the weights are read once for all B requests.

Why: one request's step streams all the weights through the core for one matrix-vector product per layer; B
requests in one matrix-matrix product share that read. (The gain is largest when the weights do not fit in the
core's cache: 2x512's 12.6 MB; see the README's load benchmark.) Requests join and leave between iterations (as in
LLM servers): a request that arrives while others are generating starts conditioning at the next iteration, one
that reaches its length leaves at once. A request alone conditions layer by layer as the engine does (cache
friendly), a chunk at a time so newcomers can join. Each request keeps its own LSTM state rows, its own position
and its own `numpy.random.Generator`, from which it draws all its randomness up front exactly as
`Engine.continue_performance` does, and a few draws per iteration use the engine's own Sampler, many use the same
arithmetic vectorised. So the same seed and input give the same touches as the unbatched engine, within float32
rounding rather than bit for bit: a `(B, n) @ W` product sums in another order than the engine's `(n,) @ W`, and a
recurrent network carries such differences on. tests/test_batching.py holds MDN outputs to 1e-5 (the
engine<->Keras tolerance) and replies under 16 concurrent requests of mixed lengths to 1e-4.

`max_batch=1` turns batching off: the loop then runs each request alone through `Engine.continue_performance`
(bit-identical to the unbatched engine), one at a time, which is also the fair baseline for `make bench-load`.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable

import numpy as np

from service.engine import MAX_STEPS, MIN_DT, Engine, Sampler

F32 = np.float32
SCALAR_SAMPLE_MAX = 6  # up to this many draws in an iteration, the engine's scalar Sampler is the faster
PREFILL_CHUNK = 32  # conditioning rows a lone request runs at a time, layer by layer (see _prefill_alone)
GEMM_MIN_ROWS = 4  # measured: OpenBLAS sgemm on 2-3 rows costs more than 2-3 sgemv calls (it packs W)


class _Job:
    """One request in the loop: its scaled input, its draws, its progress and its result."""

    __slots__ = (
        "scaled", "seconds", "inv_temperature", "choices", "noise", "generated", "pos", "steps", "total",
        "done", "result", "error", "cancelled", "events", "temperature", "sigma_temperature", "rng", "out",
        "sampler", "rows",
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
        d = engine.dimension
        self.scaled = engine.scale_events(self.events)
        self.rows = len(self.scaled)
        self.choices, self.noise = engine.draw(self.rng, self.sigma_temperature)
        with np.errstate(over="ignore"):
            self.inv_temperature = 1.0 / float(self.temperature)  # inf for a subnormal temperature: argmax
        self.generated = np.empty((MAX_STEPS, d), dtype=F32)
        self.out = np.empty(engine.output_size, dtype=F32)  # this request's MDN output, for its own Sampler
        self.sampler = Sampler(self.out, engine.mixtures, d, self.temperature, engine.sigma_epsilon, engine.scale)

    def finish(self, result: np.ndarray | None = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


class _Batch:
    """The loop's state for up to `capacity` requests: rows 0..B-1 of every array belong to the active jobs."""

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

    def add(self, job: _Job) -> None:
        row = len(self.jobs)
        self.z[row] = 0.0
        self.c[:, row] = 0.0
        self.jobs.append(job)

    def remove(self, row: int) -> None:
        """Drop the job in `row`, moving the last active job's state into it (rows stay 0..B-1)."""
        last = len(self.jobs) - 1
        if row != last:
            self.z[row] = self.z[last]
            self.c[:, row] = self.c[:, last]
            self.jobs[row] = self.jobs[last]
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
            self._md = engine.mixtures * engine.dimension
            self._low = np.array([0.0, 0.0, MIN_DT], dtype=F32)
            self._high = np.array([1.0, 1.0, np.inf], dtype=F32)
            self._columns = np.arange(engine.dimension)

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
            for job in jobs:
                batch.add(job)
            try:
                self._iterate(batch)
            except Exception as exc:  # fail the requests in the batch, keep the loop serving
                for job in batch.jobs:
                    job.finish(error=exc)
                batch.jobs.clear()

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

        Returns the number of LSTM steps taken (one per job, or a lone job's conditioning chunk)."""
        engine, jobs = self.engine, batch.jobs
        for row in range(len(jobs) - 1, -1, -1):
            if jobs[row].cancelled:
                batch.remove(row)
        n = len(jobs)
        if n == 0:
            return 0
        if self._observe_batch is not None:
            self._observe_batch(n)
        if n == 1 and jobs[0].pos < jobs[0].rows and not self._pending:
            return self._prefill_alone(batch, jobs[0])
        d = engine.dimension
        z = batch.z[:n]
        conditioning = [(row, job) for row, job in enumerate(jobs) if job.pos < job.rows]
        for row, job in conditioning:  # feed each conditioning request its next input event
            z[row, :d] = job.scaled[job.pos]
        for layer, (lo, hi) in enumerate(batch.inputs):
            g = batch.g[:n]
            if n < GEMM_MIN_ROWS:  # OpenBLAS's sgemm costs ~4 matrix-vector products below this: use those
                for row in range(n):
                    np.matmul(z[row, lo:hi], engine._stacked[layer], out=g[row])
            else:
                np.matmul(z[:, lo:hi], engine._stacked[layer], out=g)
            np.add(g, engine._biases[layer], out=g)
            self._cell(batch, layer, n)
        lo, hi = batch.h[-1]
        out = batch.out[:n]
        np.matmul(z[:, lo:hi], engine._head, out=out)
        np.add(out, engine._head_bias, out=out)

        for _, job in conditioning:
            job.pos += 1
        sampling = [row for row, job in enumerate(jobs) if job.pos == job.rows]
        if sampling:
            self._sample(batch, sampling)
        return n

    def _prefill_alone(self, batch: _Batch, job: _Job) -> int:
        """Condition a lone request on up to PREFILL_CHUNK rows the engine's way, layer by layer.

        Alone, a request gains nothing from stepping all layers at once, and layer by layer each layer's weights
        stay in cache for the whole chunk (as in Engine._condition); a chunk at a time, so a request that arrives
        meanwhile joins within a few milliseconds and conditions batched.
        """
        engine, u = self.engine, self.engine.units
        start = job.pos
        layer_in = job.scaled[start : start + PREFILL_CHUNK]
        g = batch.g[0]
        for layer in range(engine.layers):
            proj = np.matmul(layer_in, engine._kernels[layer])  # every event's input projection at once
            np.add(proj, engine._biases[layer], out=proj)
            lo, hi = batch.h[layer]
            h, recurrent = batch.z[0, lo:hi], engine._recurrent[layer]
            seq = np.empty((len(layer_in), u), dtype=F32)
            for t in range(len(layer_in)):
                np.matmul(h, recurrent, out=g)
                np.add(g, proj[t], out=g)
                self._cell(batch, layer, 1)
                seq[t] = h
            layer_in = seq
        job.pos = start + len(seq)
        if job.pos == job.rows:  # conditioned: the head's output and the first draw
            lo, hi = batch.h[-1]
            np.matmul(batch.z[:1, lo:hi], engine._head, out=batch.out[:1])
            np.add(batch.out[:1], engine._head_bias, out=batch.out[:1])
            self._sample(batch, [0])
        return len(seq)

    def _cell(self, batch: _Batch, layer: int, n: int) -> None:
        """Vectorised LSTM cell for rows 0..n-1 (same operations as the engine's `_Workspace.cell`)."""
        u = self.engine.units
        g, c, tmp = batch.g[:n], batch.c[layer, :n], batch.tmp[:n]
        lo, hi = batch.h[layer]
        h = batch.z[:n, lo:hi]
        sig, i, f, o, cand = g[:, : 3 * u], g[:, :u], g[:, u : 2 * u], g[:, 2 * u : 3 * u], g[:, 3 * u :]
        np.tanh(g, out=g)
        np.multiply(sig, 0.5, out=sig)
        np.add(sig, 0.5, out=sig)
        np.multiply(f, c, out=c)
        np.multiply(i, cand, out=tmp)
        np.add(c, tmp, out=c)
        np.tanh(c, out=tmp)
        np.multiply(o, tmp, out=h)

    def _sample(self, batch: _Batch, rows: list[int]) -> None:
        """RoboJam's draw for the given rows; finished jobs leave the batch, the others feed their touch back."""
        engine, jobs, d = self.engine, batch.jobs, self.engine.dimension
        picked = [jobs[row] for row in rows]
        if len(rows) <= SCALAR_SAMPLE_MAX:
            touches = self._sample_each(batch, rows, picked)
        else:
            touches = self._sample_vectorised(batch.out[rows], picked)
        scale, finished = F32(engine.scale), []
        for row, job, touch in zip(rows, picked, touches, strict=True):
            job.steps += 1
            job.total += touch.item(d - 1)
            if job.total >= job.seconds or job.steps >= MAX_STEPS:
                finished.append(row)
                job.finish(job.generated[: job.steps].copy())
            else:
                np.multiply(touch, scale, out=batch.z[row, :d])  # feed the touch back, in the scaled space
        for row in sorted(finished, reverse=True):
            batch.remove(row)

    def _sample_each(self, batch: _Batch, rows: list[int], picked: list[_Job]) -> list[np.ndarray]:
        """Few rows: the engine's own Sampler per row (plain floats beat a chain of small NumPy calls)."""
        touches = []
        for row, job in zip(rows, picked, strict=True):
            job.out[:] = batch.out[row]
            touch = job.generated[job.steps]
            job.sampler.sample(job.choices[job.steps], job.noise[job.steps], out=touch)
            touches.append(touch)
        return touches

    def _sample_vectorised(self, out: np.ndarray, picked: list[_Job]) -> np.ndarray:
        """Many rows: the Sampler's arithmetic across the rows at once (k, output_size) -> (k, d) touches."""
        engine, md, d = self.engine, self._md, self.engine.dimension
        logits = out[:, 2 * md :].astype(np.float64)
        diff = logits - logits.max(axis=1, keepdims=True)
        inv_temperature = np.array([job.inv_temperature for job in picked])
        with np.errstate(invalid="ignore", over="ignore"):
            scaled = diff * inv_temperature[:, None]
        scaled[diff == 0.0] = 0.0  # the top logit weighs exp(0) = 1 even when 1/temperature is inf
        cumulative = np.cumsum(np.exp(scaled), axis=1)
        u = np.array([job.choices[job.steps] for job in picked])
        threshold = u * cumulative[:, -1]
        chosen = np.minimum((cumulative < threshold[:, None]).sum(axis=1), engine.mixtures - 1)
        index = chosen[:, None] * d + self._columns
        rows = np.arange(len(picked))[:, None]
        mus, raw = out[rows, index], out[rows, index + md]
        neg = np.minimum(raw, 0.0)
        np.expm1(neg, out=neg)
        sample = np.maximum(raw, 0.0)
        sample += neg
        sample += F32(1.0)
        sample += F32(engine.sigma_epsilon)
        sample *= np.stack([job.noise[job.steps] for job in picked])
        sample += mus
        sample /= F32(engine.scale)
        np.fmax(sample, self._low, out=sample)
        np.fmin(sample, self._high, out=sample)
        for job, touch in zip(picked, sample, strict=True):
            job.generated[job.steps] = touch
        return sample


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
