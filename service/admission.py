"""Admission control: what a request costs, a bounded per-worker queue in cost units, and a per-client rate limit.

Why: throughput is fixed by the core, so without a bound every extra client only makes everyone wait longer, until
requests time out. Here a request is admitted only while the work already admitted to this worker (queued and
running) plus its own cost fits the bound: `ROBOJAM_QUEUE_COST`, lowered to what the batching loop, at its measured
speed, finishes in `ROBOJAM_QUEUE_MS` (so a bigger model or a busier core admits less). Beyond it a request gets a
fast 503 with Retry-After, and the served requests' latency stays bounded by about that much work.

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
    """The per-worker bound on admitted work, in cost units (see request_cost). Thread-safe.

    The bound is `capacity`, and with `rate` (the batching loop's measured steps per second) also what drains in
    `seconds`: a slower model or a busier core admits less, so served requests keep a bounded latency.
    """

    def __init__(
        self,
        capacity: int,
        on_change: Callable[[int, int], None] | None = None,
        *,
        rate: Callable[[], float | None] | None = None,
        seconds: float = 0.5,
        floor: int = 2 * TYPICAL_COST,
    ):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}.")
        self.capacity = capacity
        self._rate, self._seconds, self._floor = rate, seconds, floor
        self._on_change = on_change
        self._lock = threading.Lock()
        self._cost = 0
        self._requests = 0

    @property
    def bound(self) -> int:
        """The admitted cost allowed now: `capacity`, lowered to what the loop drains in `seconds`."""
        rate = self._rate() if self._rate is not None else None
        if not rate:
            return self.capacity
        return int(min(self.capacity, max(self._floor, rate * self._seconds)))

    @property
    def load(self) -> tuple[int, int]:
        """(admitted requests, their total cost) right now."""
        return self._requests, self._cost

    def check_room(self, cost: int = 2) -> None:
        """QueueFull now if not even a request of `cost` would fit: lets a full worker refuse before parsing."""
        if self._requests and self._cost + cost > self.bound:
            raise QueueFull("the server is at capacity; retry in a moment.")

    def admit(self, cost: int) -> _Ticket:
        """A ticket to use as a context manager around the work, or QueueFull.

        A request alone is always admitted, whatever its cost (the rows x seconds cap bounds that cost).
        """
        with self._lock:
            if self._requests and self._cost + cost > self.bound:
                raise QueueFull("the server is at capacity; retry in a moment.")
            self._cost += cost
            self._requests += 1
            self._changed()
        return _Ticket(self, cost)

    def _release(self, cost: int) -> None:
        with self._lock:
            self._cost -= cost
            self._requests -= 1
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self._requests, self._cost)


class _Ticket:
    def __init__(self, admission: Admission, cost: int):
        self._admission, self._cost = admission, cost

    def __enter__(self) -> _Ticket:
        return self

    def __exit__(self, *exc) -> None:
        self._admission._release(self._cost)


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
