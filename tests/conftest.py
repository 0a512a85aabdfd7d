"""Shared test fixtures: where the corpus is, and the rule that a missing prerequisite fails in CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from robojam_format.layout import REPO_ROOT

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def require(condition: bool, reason: str) -> None:
    """Skip locally when a prerequisite is missing, but fail in CI (CI must never skip silently)."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI prerequisite missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The MicroJam corpus directory ($ROBOJAM_DATA, default ../shared/data beside the repo)."""
    path = Path(os.environ.get("ROBOJAM_DATA", REPO_ROOT.parent / "shared" / "data"))
    require((path / "TinyPerformanceCorpus.h5").is_file(), f"MicroJam corpus not found in {path}")
    return path
