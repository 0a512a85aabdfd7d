"""Test helpers, imported by the tests (`from support import require`; tests/ is on sys.path under pytest).

- `support.artifacts`: random but valid weights artifacts, written through the contract.
- `support.microjam`: the MicroJam app's own CSV reader (a port) and writer, and the reply check built on them.
- `support.server`: a real gunicorn server subprocess on a free loopback port.

`tests/conftest.py` keeps only fixtures.
"""

from __future__ import annotations

import os

import pytest


def require(condition: bool, reason: str) -> None:
    """Skip locally when a prerequisite is missing, but fail in CI (CI must never skip silently)."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI prerequisite missing: {reason}")
    pytest.skip(reason)
