"""Shared fixtures only (helpers live in tests/support): where the corpus is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import require

from robojam_format.layout import REPO_ROOT

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The MicroJam corpus directory ($ROBOJAM_DATA, default ../shared/data beside the repo)."""
    path = Path(os.environ.get("ROBOJAM_DATA", REPO_ROOT.parent / "shared" / "data"))
    require((path / "TinyPerformanceCorpus.h5").is_file(), f"MicroJam corpus not found in {path}")
    return path
