"""devtools.gunicorn.GunicornProcess with stand-in commands (the real server: tests/test_service_*.py)."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from devtools.gunicorn import SERVICE_COMMAND, GunicornProcess


def test_the_default_command_is_the_services_gunicorn_config_behind_any_prefix(tmp_path):
    server = GunicornProcess(tmp_path / "log", prefix=("taskset", "-c", "0"), env={"ROBOJAM_WORKERS": "1"})
    assert server.cmd == ["taskset", "-c", "0", *SERVICE_COMMAND]
    assert SERVICE_COMMAND[1:] == ("-c", "service/gunicorn_conf.py", "service.app:create_app()")
    assert server.env["ROBOJAM_BIND"] == f"127.0.0.1:{server.port}" and server.env["ROBOJAM_WORKERS"] == "1"
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_a_server_that_exits_fails_wait_ready_with_its_exit_code_and_log(tmp_path):
    cmd = [sys.executable, "-c", "import sys; print('cannot start: stand-in'); sys.exit(3)"]
    with GunicornProcess(tmp_path / "log", cmd=cmd) as server:
        with pytest.raises(AssertionError, match=r"(?s)server exited with 3.*cannot start: stand-in"):
            server.wait_ready(timeout=30)


def test_workers_are_the_masters_children_and_stop_ends_the_master_with_sigterm(tmp_path):
    child = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    cmd = [sys.executable, "-c", child + "print('up', flush=True); time.sleep(60)"]
    server, workers = GunicornProcess(tmp_path / "log", cmd=cmd).start(), []
    try:
        deadline = time.monotonic() + 30
        while not ("up" in server.log() and server.workers()) and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = server.workers()
        assert len(workers) == 1 and workers[0] != server.proc.pid
        assert server.stop() == -signal.SIGTERM
        assert server.stop() == -signal.SIGTERM  # a second stop only reports
    finally:
        server.stop()
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
