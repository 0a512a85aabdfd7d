"""Admission control: what a request costs, a bounded per-worker queue in cost units, and a per-client rate limit.

Why: throughput is fixed by the core, so without a bound every extra client only makes everyone wait longer, until
requests time out. Here a request is admitted only while the work already admitted to this worker (queued and
running) plus its own cost fits the bound; beyond it a request gets a fast 503 with Retry-After. The bound starts
at `ROBOJAM_QUEUE_COST` and adapts to what the core actually gets through (additive increase, multiplicative
decrease, as adaptive concurrency limits do): a reply later than `ROBOJAM_QUEUE_MS` after admission (times its
cost in typical requests, if more) cuts it by a fifth, at most once per half that time, but never below half of
`ROBOJAM_QUEUE_COST` (so batching keeps working when the target is out of reach); a timely one raises it by a
quarter of a typical request. So a bigger model or a slower or busier core admits less, and served requests keep
a bounded latency.

A request's cost is in LSTM steps, the unit of the engine's work: its conditioning rows plus the generated steps
its `seconds` will typically take (`STEPS_PER_SECOND`, the corpus's pace of about one touch per 50 ms; the engine's
hard cap is MAX_STEPS). `rows x seconds` is capped separately (`max_row_seconds`), so no single request can cost
more than about ten typical ones (100 rows, 5 s).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from service.engine import MAX_STEPS

STEPS_PER_SECOND = 20  # generated touches per second of continuation (the corpus's median pace)
RETRY_AFTER_SECONDS = 1  # the queue holds well under a second of work: try again soon
TYPICAL_COST = 200  # 100 rows, 5 s


def request_cost(rows: int, seconds: float) -> int:
    """LSTM steps a request is expected to take: conditioning rows plus generated steps."""
    return rows + min(MAX_STEPS, math.ceil(seconds * STEPS_PER_SECOND))


class Refused(Exception):
    """The request is not admitted now: one sentence, and the seconds to wait before retrying (service.errors
    answers it with its status and a Retry-After header)."""

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_SECONDS):
        super().__init__(message)
        self.retry_after = retry_after


class QueueFull(Refused):
    """This worker has as much work admitted as its queue bound allows."""


class RateLimited(Refused):
    """This client has used up its request budget for now."""


class Admission:
    """The per-worker bound on admitted work, in cost units (see request_cost), adapted to latency. Thread-safe."""

    def __init__(
        self,
        capacity: int,
        on_change: Callable[[int, int], None] | None = None,
        *,
        target_seconds: float = 0.5,
        floor: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}.")
        self.capacity, self.target_seconds = capacity, target_seconds
        # Never below half the capacity: a target the core cannot meet at all must not shrink the batch to nothing.
        self._floor, self._clock = min(capacity // 2 if floor is None else floor, capacity), clock
        self._bound = float(capacity)
        self._last_cut = -math.inf
        self._on_change = on_change
        self._lock = threading.Lock()
        self._cost = 0
        self._requests = 0

    @property
    def bound(self) -> int:
        """The admitted cost allowed now (between the floor and `capacity`)."""
        return int(self._bound)

    @property
    def load(self) -> tuple[int, int]:
        """(admitted requests, their total cost) right now."""
        return self._requests, self._cost

    def check_room(self, cost: int = 2) -> None:
        """QueueFull now if not even a request of `cost` would fit: lets a full worker refuse before parsing."""
        if self._requests and self._cost + cost > self._bound:
            raise QueueFull("the server is at capacity; retry in a moment.")

    def admit(self, cost: int) -> _Ticket:
        """A ticket to use as a context manager around the work, or QueueFull.

        A request alone is always admitted, whatever its cost (the rows x seconds cap bounds that cost).
        """
        with self._lock:
            if self._requests and self._cost + cost > self._bound:
                raise QueueFull("the server is at capacity; retry in a moment.")
            self._cost += cost
            self._requests += 1
            self._changed()
        return _Ticket(self, cost, self._clock())

    def _release(self, cost: int, started: float) -> None:
        now = self._clock()
        with self._lock:
            self._cost -= cost
            self._requests -= 1
            if now - started > self.target_seconds * max(1.0, cost / TYPICAL_COST):  # big requests may take longer
                if now - self._last_cut >= self.target_seconds / 2:  # one cut per burst of late replies
                    self._bound = max(float(self._floor), self._bound * 0.8)
                    self._last_cut = now
            else:
                self._bound = min(float(self.capacity), self._bound + TYPICAL_COST / 4)
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self._requests, self._cost)


class _Ticket:
    def __init__(self, admission: Admission, cost: int, started: float):
        self._admission, self._cost, self._started = admission, cost, started

    def __enter__(self) -> _Ticket:
        return self

    def __exit__(self, *exc) -> None:
        self._admission._release(self._cost, self._started)


class RateLimiter:
    """Per-client token buckets: `per_minute` requests a minute on average, bursts of up to `burst`.

    Memory is bounded: the least recently seen clients beyond `max_clients` are forgotten (a forgotten client
    starts again with a full bucket, which errs on the side of serving).
    """

    def __init__(self, per_minute: int, burst: int, max_clients: int = 10_000, clock=time.monotonic):
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self.max_clients, self._clock = max_clients, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Take one token for `client`, or RateLimited saying when the next one is due."""
        now = self._clock()
        with self._lock:
            tokens, seen = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - seen) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        if not allowed:
            wait = math.ceil((1.0 - tokens) / self.rate)
            raise RateLimited("too many requests from this client; slow down.", retry_after=max(1, wait))


def client_address(remote_addr: str | None, forwarded_for: str | None, trusted_proxies: frozenset[str]) -> str:
    """The client's address: the socket peer, unless the peer is a trusted proxy, whose X-Forwarded-For entry
    (the last one, the address the proxy itself saw) is used instead. Other peers cannot choose their identity.
    """
    peer = remote_addr or "unknown"
    if peer in trusted_proxies and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return peer
