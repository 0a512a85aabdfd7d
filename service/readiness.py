"""Readiness: a process is ready once the weights are loaded and one full warm-up inference has run in it.

The warm-up runs in a background thread of the process that will serve, started by gunicorn's post_worker_init
hook or by the first request a process sees. It is tracked per process id, because a worker forked from a
preloading master inherits the master's objects but none of its threads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Readiness:
    """Runs `warm_up` once per process and reports whether it has finished."""

    def __init__(self, warm_up: Callable[[], None]):
        self._warm_up = warm_up
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._done = threading.Event()
        self._error: str | None = None

    def start(self) -> None:
        """Start the warm-up in this process unless it already ran or runs here. Cheap to call often."""
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            self._pid, self._done, self._error = pid, threading.Event(), None
            threading.Thread(target=self._run, args=(self._done,), name="robojam-warm-up", daemon=True).start()

    def _run(self, done: threading.Event) -> None:
        try:
            self._warm_up()
        except Exception as exc:  # reported by /readyz; the process stays alive so the cause can be read
            log.exception("warm-up inference failed")
            self._error = f"warm-up inference failed: {exc}"
        done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the warm-up of this process finishes; True if it succeeded."""
        return self._done.wait(timeout) and self._error is None

    @property
    def status(self) -> tuple[bool, str]:
        """(ready, reason) for this process."""
        if self._pid != os.getpid() or not self._done.is_set():
            return False, "warming up: the warm-up inference has not finished."
        if self._error is not None:
            return False, self._error
        return True, "ready"
