"""The one place the repo uses the Pulumi Python SDK's private API (written for pulumi >=3.200,<4; checked on 3.272).

Public API covers the rest (`pulumi.runtime.set_mocks`, `Mocks`, `set_all_config`, `reset_options`, the config
environment). What it does not offer, and what this module wraps:
- every config key that was set (to reject unknown keys): the runtime's `CONFIG` context variable;
- the dependencies of a registration, which `Mocks.new_resource` is not told: a `MockMonitor` subclass that
  exposes the RegisterResource request being answered;
- running a program to completion under mocks: `run_pulumi_func`;
- the event loops the mock monitor opens in its worker threads and never closes: `_ensure_event_loop`;
- secret wrappers in a deserialised input: `is_rpc_secret` / `unwrap_rpc_secret`.
`canary()` says in one line when an upgrade breaks any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import threading
from typing import Any

from pulumi.runtime import config as _config
from pulumi.runtime import mocks as _mocks
from pulumi.runtime import rpc as _rpc
from pulumi.runtime import stack as _stack

WRITTEN_FOR = ((3, 200), (4, 0))
WRITTEN_FOR_TEXT = "pulumi >=3.200,<4"
_WHERE = f"infra/compat/pulumi_sdk.py (written for {WRITTEN_FOR_TEXT})"


class CompatError(RuntimeError):
    """The installed Pulumi SDK no longer offers what this seam relies on (one line, naming this module)."""


def configured_values() -> dict[str, Any]:
    """Every config value the runtime holds ("ns:key" -> value): the environment's and the ones set in process."""
    return {**_config.get_config_env(), **_config.CONFIG.get()}


def run_program(func) -> Any:
    """A coroutine that runs `func` under the configured (mock) runtime and waits for every registration."""
    return _stack.run_pulumi_func(func)


def is_secret(value: Any) -> bool:
    """Whether a deserialised mock input is a secret wrapper."""
    return _rpc.is_rpc_secret(value)


def unwrap_secret(value: Any) -> Any:
    """The plain value inside a secret wrapper."""
    return _rpc.unwrap_rpc_secret(value)


_REGISTERING = threading.local()  # the RegisterResource request the monitor is answering (same thread)


class RequestAwareMonitor(_mocks.MockMonitor):
    """The mock monitor, letting mocks see what the plain mock arguments leave out (`current_registration`)."""

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        _REGISTERING.request = request
        try:
            return super().RegisterResource(request)
        finally:
            _REGISTERING.request = None


def current_registration():
    """The RegisterResource request being answered on this thread (dependencies, replaceOnChanges), or None."""
    return getattr(_REGISTERING, "request", None)


_LOOPS_LOCK = threading.Lock()


@contextlib.contextmanager
def closing_mock_loops():
    """Close the event loops Pulumi's mock monitor opens in its executor threads.

    The mocks call `_ensure_event_loop()` in each worker thread and never close the loop it makes; left to the
    garbage collector at interpreter exit they print "Exception ignored ... Invalid file descriptor".
    """
    created: list[asyncio.AbstractEventLoop] = []
    original = _mocks._ensure_event_loop

    def ensure_and_record() -> asyncio.AbstractEventLoop:
        try:
            return asyncio.get_event_loop()
        except RuntimeError:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            with _LOOPS_LOCK:
                created.append(loop)
            return loop

    _mocks._ensure_event_loop = ensure_and_record
    try:
        yield
    finally:
        _mocks._ensure_event_loop = original
        for loop in created:
            loop.close()


def _version() -> tuple[int, ...]:
    return tuple(int(part) for part in importlib.metadata.version("pulumi").split(".")[:2] if part.isdigit())


def canary() -> None:
    """Raise CompatError (one line naming this module) if the installed SDK breaks a seam above."""
    low, high = WRITTEN_FOR
    if not low <= _version() < high:
        raise CompatError(f"{_WHERE}: pulumi {importlib.metadata.version('pulumi')} is outside its range.")
    if not hasattr(getattr(_config, "CONFIG", None), "get"):
        raise CompatError(f"{_WHERE}: pulumi.runtime.config.CONFIG is gone.")
    if not callable(getattr(_mocks, "_ensure_event_loop", None)):
        raise CompatError(f"{_WHERE}: pulumi.runtime.mocks._ensure_event_loop is gone.")
    if "_ensure_event_loop" not in _mocks.MockMonitor.RegisterResource.__code__.co_names:
        raise CompatError(f"{_WHERE}: MockMonitor.RegisterResource no longer calls _ensure_event_loop.")
    if not asyncio.iscoroutinefunction(getattr(_stack, "run_pulumi_func", None)):
        raise CompatError(f"{_WHERE}: pulumi.runtime.stack.run_pulumi_func is gone.")
    key, sig = getattr(_rpc, "_special_sig_key", None), getattr(_rpc, "_special_secret_sig", None)
    wrapped = {key: sig, "value": "s"}
    if key is None or not (is_secret(wrapped) and unwrap_secret(wrapped) == "s"):
        raise CompatError(f"{_WHERE}: is_rpc_secret / unwrap_rpc_secret no longer read a secret wrapper.")
