"""service/gunicorn_conf.py as gunicorn reads it: env overrides, TLS, metrics directory, worker exits."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from support import require
from support.microjam import check_reply

from devtools.gunicorn import VENV_BIN, GunicornProcess, child_pids
from devtools.performances import random_performance
from devtools.random_weights import write_random_artifact
from robojam_format.layout import REPO_ROOT

pytestmark = pytest.mark.slow
GUNICORN = [str(VENV_BIN / "gunicorn"), "-c", "service/gunicorn_conf.py"]
PERF = random_performance(seed=3)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_random_artifact(tmp_path_factory.mktemp("gunicorn") / "w.npz", units=32, mixtures=3)


def printed_config(env: dict, tmp_path: Path, weights: Path) -> dict[str, str]:
    """The settings gunicorn itself ends up with after loading the config module (and the app) under `env`."""
    full = {**os.environ, **env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "ROBOJAM_WEIGHTS": str(weights)}
    done = subprocess.run(
        [*GUNICORN, "--print-config", "service.app:create_app()"],
        cwd=REPO_ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    settings = {}
    for line in done.stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            settings[name.strip()] = value.strip()
    return settings


def test_defaults(tmp_path, weights):
    env = {k: "" for k in os.environ if k.startswith("ROBOJAM_")}
    config = printed_config(env, tmp_path, weights)
    assert config["bind"] == "['127.0.0.1:5000']"
    assert config["preload_app"] == "True"
    assert config["worker_class"] == "service.worker.JsonErrorThreadWorker"
    assert config["timeout"] == "30" and config["graceful_timeout"] == "30"
    assert config["accesslog"] == "-" and config["certfile"] == "None"
    shm = os.access("/dev/shm", os.W_OK | os.X_OK)
    assert config["worker_tmp_dir"] == ("/dev/shm" if shm else tempfile.gettempdir())
    assert int(config["workers"]) == len(os.sched_getaffinity(0))


def test_every_setting_is_overridable_by_env(tmp_path, weights):
    config = printed_config(
        {
            "ROBOJAM_BIND": "0.0.0.0:8080,127.0.0.1:8081",
            "ROBOJAM_WORKERS": "5",
            "ROBOJAM_THREADS": "3",
            "ROBOJAM_TIMEOUT": "12",
            "ROBOJAM_GRACEFUL_TIMEOUT": "7",
            "ROBOJAM_KEEPALIVE": "9",
            "ROBOJAM_MAX_REQUESTS": "1000",
            "ROBOJAM_MAX_REQUESTS_JITTER": "50",
            "ROBOJAM_PRELOAD": "false",
            "ROBOJAM_WORKER_TMP_DIR": str(tmp_path),
            "ROBOJAM_ACCESS_LOG": str(tmp_path / "access.log"),
            "ROBOJAM_ERROR_LOG": str(tmp_path / "error.log"),
            "ROBOJAM_LOG_LEVEL": "warning",
        },
        tmp_path,
        weights,
    )
    expected = {
        "bind": "['0.0.0.0:8080', '127.0.0.1:8081']",
        "workers": "5",
        "threads": "3",
        "timeout": "12",
        "graceful_timeout": "7",
        "keepalive": "9",
        "max_requests": "1000",
        "max_requests_jitter": "50",
        "preload_app": "False",
        "worker_tmp_dir": str(tmp_path),
        "accesslog": str(tmp_path / "access.log"),
        "errorlog": str(tmp_path / "error.log"),
        "loglevel": "warning",
    }
    assert {name: config[name] for name in expected} == expected


@pytest.mark.parametrize(
    ("content", "cpus"),
    [
        ("200000 100000\n", 2),
        ("150000 100000\n", 2),
        ("50000 100000\n", 1),
        ("max 100000\n", None),
        ("", None),
    ],
)
def test_default_workers_respect_a_container_cpu_quota(tmp_path, content, cpus):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(content)
    code = "import sys; from service.settings import cgroup_cpus; print(cgroup_cpus(sys.argv[1]))"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(cpu_max)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == str(cpus), done.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ROBOJAM_WORKERS": "two"}, "ROBOJAM_WORKERS must be an integer, got 'two'."),
        ({"ROBOJAM_WORKERS": "0"}, "ROBOJAM_WORKERS must be at least 1, got 0."),
        ({"ROBOJAM_PRELOAD": "maybe"}, "ROBOJAM_PRELOAD must be a boolean"),
        ({"ROBOJAM_PRECISION": "fp16"}, "ROBOJAM_PRECISION must be one of fp32, int8, got 'fp16'."),
        ({"ROBOJAM_CERTFILE": "/etc/hostname"}, "set both ROBOJAM_CERTFILE and ROBOJAM_KEYFILE"),
        (
            {"ROBOJAM_CERTFILE": "/no/cert.pem", "ROBOJAM_KEYFILE": "/no/key.pem"},
            "TLS file not found: /no/cert.pem.",
        ),
    ],
)
def test_bad_settings_stop_startup_with_a_clear_message(tmp_path, env, message):
    full = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), **env}
    done = subprocess.run(
        [*GUNICORN, "--check-config", "service.app:create_app()"],
        cwd=REPO_ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert message in done.stdout + done.stderr


@pytest.fixture
def tls_files(tmp_path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    require(openssl is not None, "the openssl CLI is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_tls_from_env(tmp_path, weights, tls_files):
    cert, key = tls_files
    env = {"ROBOJAM_WEIGHTS": str(weights), "ROBOJAM_CERTFILE": str(cert), "ROBOJAM_KEYFILE": str(key)}
    with GunicornProcess(tmp_path / "tls.log", env=env) as server:
        server.scheme = "https"
        server.wait_ready(verify=str(cert))
        reply = requests.post(server.url + "/api/predict", json={"perf": PERF}, verify=str(cert), timeout=60)
        check_reply(reply.json()["response"], seconds=5.0)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=10)  # plain HTTP is refused
        healthcheck = subprocess.run(
            [sys.executable, "-m", "service.healthcheck"],
            cwd=REPO_ROOT,
            env=server.env,
            timeout=30,
            capture_output=True,
        )
        assert healthcheck.returncode == 0, healthcheck.stderr


def metrics_dir_of(pid: int) -> Path:
    """The multiprocess metrics directory a worker writes to, read from its memory maps."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        path = line.split(maxsplit=5)[-1]
        if path.endswith(".db") and "robojam-metrics-" in path:
            return Path(path).parent
    raise AssertionError(f"worker {pid} has no metrics file mapped")


def test_own_metrics_dir_is_removed_at_exit_and_dead_workers_are_dropped(tmp_path, weights):
    env = {"ROBOJAM_WEIGHTS": str(weights), "ROBOJAM_WORKERS": "2"}
    env = {**env, "PROMETHEUS_MULTIPROC_DIR": ""}  # let the config module make its own
    with GunicornProcess(tmp_path / "metrics.log", env=env) as server:
        server.wait_ready()
        workers = child_pids(server.proc.pid)
        assert len(workers) == 2
        directory = metrics_dir_of(workers[0])
        assert metrics_dir_of(workers[1]) == directory and directory.is_dir()
        victim = workers[0]
        assert (directory / f"gauge_livesum_{victim}.db").exists()
        os.kill(victim, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while (directory / f"gauge_livesum_{victim}.db").exists() or len(child_pids(server.proc.pid)) < 2:
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.1)
        assert victim not in child_pids(server.proc.pid)
        server.wait_ready()  # the replacement worker warms up and serves
        metrics = requests.get(server.url + "/metrics", timeout=10).text
        assert 'robojam_http_requests_total{endpoint="/readyz",method="GET",status="200"}' in metrics
        assert server.stop() == 0  # graceful SIGTERM shutdown
    assert not directory.exists()


def test_given_metrics_dir_is_cleaned_of_stale_files_and_kept(tmp_path, weights):
    directory = tmp_path / "prom"
    directory.mkdir()
    stale = directory / "counter_999999.db"
    stale.write_bytes(b"stale")
    env = {
        "ROBOJAM_WEIGHTS": str(weights),
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "ROBOJAM_WORKERS": "1",
    }
    with GunicornProcess(tmp_path / "given.log", env=env) as server:
        server.wait_ready()
        assert not stale.exists()
        assert list(directory.glob("*.db"))
    assert directory.is_dir()
