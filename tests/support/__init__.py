"""Test-only helpers, imported by the tests (`from support import require`; tests/ is on sys.path under pytest).

- `support.microjam`: the MicroJam app's own CSV reader (a port), and the reply check built on it.
- `support.fixed_mixture`: a model whose MDN output is known exactly.
- `support.policy_client`: talks to the running policy pack (run inside policy/venv).

What the benchmarks and staging use too (free ports, gunicorn, performances, random weights) is in `devtools/`.
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
