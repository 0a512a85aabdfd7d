"""A real gunicorn server subprocess (the service's own config by default) on a free loopback port.

The tests, `make bench` and `make bench-load` all start the service this way:

    with GunicornProcess(tmp_path / "gunicorn.log", env={"ROBOJAM_WEIGHTS": str(path)}) as server:
        requests.post(server.url + "/api/predict", json={"perf": perf})
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import requests

from devtools.ports import free_port
from robojam_format.layout import REPO_ROOT

VENV_BIN = Path(sys.executable).parent
SERVICE_COMMAND = (str(VENV_BIN / "gunicorn"), "-c", "service/gunicorn_conf.py", "service.app:create_app()")


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid` (gunicorn workers of a master), from /proc."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


class GunicornProcess:
    """A server subprocess on 127.0.0.1:`port`, run from the repository root (or `cwd`, another checkout of it) in
    its own session; stopped by SIGTERM then SIGKILL. `prefix` goes before the command (e.g. `taskset -c 0`)."""

    def __init__(
        self,
        log_path: Path,
        env: dict | None = None,
        cmd: Sequence[str] | None = None,
        port: int = 0,
        prefix: Sequence[str] = (),
        cwd: Path = REPO_ROOT,
    ):
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "ROBOJAM_BIND": f"127.0.0.1:{self.port}",
            "ROBOJAM_WORKERS": "2",
            **(env or {}),
        }
        self.env["PATH"] = f"{VENV_BIN}{os.pathsep}{self.env.get('PATH', '')}"
        self.cmd = [*prefix, *(cmd or SERVICE_COMMAND)]
        self.log_path = log_path
        self.cwd = cwd
        self.scheme = "http"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def workers(self) -> list[int]:
        """The master's worker processes."""
        return child_pids(self.proc.pid)

    def start(self) -> GunicornProcess:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def wait_ready(self, timeout: float = 90.0, **kwargs) -> None:
        """Until /readyz answers 200 on every worker: each worker warms up on its own, so ask a few times."""
        deadline, streak = time.monotonic() + timeout, 0
        while streak < 6:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready after {timeout} s:\n{self.log()[-4000:]}")
            try:
                ok = requests.get(self.url + "/readyz", timeout=5, **kwargs).status_code == 200
            except requests.RequestException:
                ok = False
            streak = streak + 1 if ok else 0
            time.sleep(0.05 if ok else 0.2)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # our own session: only this server's processes
            return self.proc.wait(timeout=10)

    def __enter__(self) -> GunicornProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
