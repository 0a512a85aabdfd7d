"""Helpers for the service tests: the MicroJam app's own CSV reader and writer, and a real gunicorn server.

`parse_touch_line` is a line-for-line port of the app's `TouchRecord(fromCSVLine:)` (microjam, Swift):

    let components = line.replacingOccurrences(of: " ", with: "").components(separatedBy: ",")
    guard let time = Double(components[0]), let x = Double(components[1]), let y = Double(components[2]),
          let z = Double(components[3]), let mov = Double(components[4]) else { return nil }

and the app reads a performance as
`csv.components(separatedBy: "\\n").flatMap(TouchRecord.init(fromCSVLine:))`. The guard stops at the first
field that does not parse, so a line whose first field parses but that has fewer than five fields indexes past
the end of the array and crashes the app (`AppCrash` here). Swift's `Double(String)` takes the whole string or
nothing (no surrounding whitespace, so a trailing CR drops the row).
"""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

from robojam_format.layout import REPO_ROOT

VENV_BIN = Path(sys.executable).parent
HEADER = "time,x,y,z,moving"

_DECIMAL = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_HEX = r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
_SPECIAL = r"[+-]?(?:[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])"


class AppCrash(Exception):
    """The app would crash on this input (Swift array index out of range)."""


def swift_double(text: str) -> float | None:
    """Swift's `Double(String)`: the whole string must be a decimal, hex or inf/nan literal, else nil."""
    if re.fullmatch(_DECIMAL, text):
        return float(text)
    if re.fullmatch(_HEX, text):
        sign = -1.0 if text.startswith("-") else 1.0
        return sign * float.fromhex(text.lstrip("+-"))
    if re.fullmatch(_SPECIAL, text):
        return float(text)
    return None


@dataclass(frozen=True)
class Touch:
    time: float
    x: float
    y: float
    z: float
    moving: bool
    mov: float  # the raw fifth field


def parse_touch_line(line: str) -> Touch | None:
    """Port of `TouchRecord(fromCSVLine:)`: a Touch, None (row dropped), or AppCrash."""
    components = line.replace(" ", "").split(",")
    values = []
    for index in range(5):
        if index >= len(components):
            raise AppCrash(f"index {index} out of range for line {line!r}")
        value = swift_double(components[index])
        if value is None:
            return None
        values.append(value)
    t, x, y, z, mov = values
    return Touch(time=t, x=x, y=y, z=z, moving=mov == 1, mov=mov)


def parse_app_csv(text: str) -> list[Touch]:
    """What the app keeps from a CSV: the touches of every line that parses."""
    return [touch for touch in map(parse_touch_line, text.split("\n")) if touch is not None]


def app_csv(rows) -> str:
    """A performance exactly as the app writes it: header, then "%f, %f, %f, %f, %d\\n" per touch."""
    line = "%f, %f, %f, %f, %d\n"  # the app's own String(format:) pattern, kept verbatim
    return HEADER + "\n" + "".join(line % row for row in rows)  # noqa: UP031


def random_performance(seed: int, seconds: float = 5.0) -> str:
    """An app-format performance of a few swipes and taps (random walk), about `seconds` long."""
    rng = np.random.default_rng(seed)
    rows, t = [], rng.uniform(0.0, 0.05)
    while t < seconds:
        x, y = rng.uniform(0.05, 0.95, size=2)
        for i in range(int(rng.integers(1, 25))):
            rows.append((t, x, y, rng.uniform(10.0, 40.0), 0 if i == 0 else 1))
            x = float(np.clip(x + rng.normal(0, 0.03), 0, 1))
            y = float(np.clip(y + rng.normal(0, 0.03), 0, 1))
            t += rng.uniform(0.015, 0.03)
        t += rng.uniform(0.1, 0.6)
    return app_csv(rows)


def check_reply(text: str, seconds: float) -> list[Touch]:
    """Assert a reply is what the app can play: every row accepted and valid, duration in [s, s + last dt]."""
    assert "\r" not in text and text.endswith("\n")
    lines = text.split("\n")
    assert lines[0] == HEADER and lines[-1] == ""
    body = lines[1:-1]
    assert body, "the reply has no touches"
    for line in body:
        assert len(line.split(",")) == 5, f"not exactly 5 fields: {line!r}"
        assert parse_touch_line(line) is not None, f"the app would drop {line!r}"
    assert parse_touch_line(lines[0]) is None  # the header is skipped, not a touch
    touches = parse_app_csv(text)
    assert len(touches) == len(body)
    times = np.array([touch.time for touch in touches])
    dt = np.diff(times, prepend=0.0)
    for touch in touches:
        assert all(math.isfinite(v) for v in (touch.time, touch.x, touch.y, touch.z))
        assert 0.0 <= touch.x <= 1.0 and 0.0 <= touch.y <= 1.0
        assert touch.z == 38.0 and touch.mov in (0.0, 1.0)
    assert dt.min() >= 0.001 - 2e-6, "times must increase by at least the 1 ms minimum step"
    assert touches[0].mov == 0.0, "the first touch must start a new touch"
    for touch, step in zip(touches[1:], dt[1:], strict=True):
        if abs(step - 0.1) > 2e-6:  # six printed decimals cannot decide a gap of exactly 0.1 s
            assert touch.mov == (0.0 if step > 0.1 else 1.0)
    tol = 1e-5 * len(touches)
    assert times[-1] >= seconds - tol, f"reply lasts {times[-1]:.4f} s, less than {seconds} s"
    assert times[-1] - dt[-1] < seconds + tol, "the reply went on after reaching the requested length"
    return touches


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid` (gunicorn workers of a master), from /proc."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


class Server:
    """A real server subprocess (gunicorn by default) on 127.0.0.1:`port`; stopped by SIGTERM then SIGKILL."""

    def __init__(self, log_path: Path, env: dict | None = None, cmd: list[str] | None = None, port: int = 0):
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "ROBOJAM_BIND": f"127.0.0.1:{self.port}",
            "ROBOJAM_WORKERS": "2",
            **(env or {}),
        }
        self.env["PATH"] = f"{VENV_BIN}{os.pathsep}{self.env.get('PATH', '')}"
        self.cmd = cmd or [
            str(VENV_BIN / "gunicorn"),
            "-c",
            "service/gunicorn_conf.py",
            "service.app:create_app()",
        ]
        self.log_path = log_path
        self.scheme = "http"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> Server:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
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

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
