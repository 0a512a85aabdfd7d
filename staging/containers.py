"""A foreground container process (as systemd runs one) that is always removed, whatever happens."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from staging.engine import Engine


@contextlib.contextmanager
def foreground(engine: Engine, argv: list[str], name: str, log: Path):
    """Start `podman run ...` in the foreground (like ExecStart); on exit, force-remove the container."""
    engine.podman("rm", "--force", "--ignore", name, check=False)
    with log.open("a") as out:
        process = subprocess.Popen(argv, env=engine.env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            engine.podman("rm", "--force", "--time", "0", name, check=False, timeout=60)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        engine.podman("rm", "--force", "--ignore", name, check=False, timeout=60)
