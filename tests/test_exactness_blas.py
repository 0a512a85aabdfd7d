"""Every claim of exact equality holds under every OpenBLAS kernel family this project meets.

OpenBLAS picks its kernels when NumPy loads (`OPENBLAS_CORETYPE` forces a family), and within a family it may round
a row differently depending on a call's shape: exactness needs identical calls, not luck. The tests marked `exact`
are rerun here in a fresh process per family: Haswell (AVX2, what AMD EPYC machines run here), SkylakeX (AVX-512,
Intel Xeon) and Zen. Each run first checks that OpenBLAS really loaded the family asked for.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import require

TESTS = Path(__file__).parent
# Family asked for -> the kernel names OpenBLAS may report for it (a build may run Zen on its Haswell kernels).
CORETYPES = {"Haswell": {"haswell"}, "SkylakeX": {"skylakex"}, "Zen": {"zen", "haswell"}}
PROBE = "import numpy, threadpoolctl; print([i.get('architecture') for i in threadpoolctl.threadpool_info()])"


def exact_test_files() -> list[str]:
    """The test modules that claim exact equality somewhere (they carry the `exact` marker)."""
    marker = re.compile(r"^\s*@pytest\.mark\.exact\b|^pytestmark\s*=.*pytest\.mark\.exact", re.M)
    files = (p for p in TESTS.glob("test_*.py") if p.name != Path(__file__).name)
    return sorted(str(p) for p in files if marker.search(p.read_text()))


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_the_exact_claims_are_marked():
    """The marker is how the runs below find the claims: the batching and engine exactness tests carry it."""
    names = {Path(p).name for p in exact_test_files()}
    assert {"test_batching.py", "test_batch_kernels.py", "test_engine_safety.py", "test_engine_sampling.py"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("coretype", sorted(CORETYPES))
def test_exact_claims_hold_under_each_openblas_kernel_family(coretype):
    if coretype == "SkylakeX":
        require("avx512f" in cpu_flags(), "OpenBLAS's SkylakeX kernels need an AVX-512 CPU")
    env = {**os.environ, "OPENBLAS_CORETYPE": coretype, "OPENBLAS_NUM_THREADS": "1"}
    probe = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert {a.lower() for a in ast.literal_eval(probe.stdout)} <= CORETYPES[coretype], probe.stdout
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "exact", *exact_test_files()],
        env=env,
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"under OPENBLAS_CORETYPE={coretype}:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
    assert re.search(r"\b\d+ passed\b", run.stdout) and " failed" not in run.stdout, run.stdout[-2000:]
