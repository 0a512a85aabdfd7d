"""The page and /api/model in process: headers, static files, the model description, packaging.

The browser itself is driven in tests/test_web_browser.py; these checks need no browser.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import tomllib
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from docker.utils.build import PatternMatcher

from devtools.random_weights import write_random_artifact
from robojam_format.layout import REPO_ROOT
from service.app import create_app
from service.engine import Engine
from service.model_info import parameter_count
from service.openapi import document
from service.web import STATIC_DIR


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_random_artifact(tmp_path_factory.mktemp("w") / "w.npz", units=16, layers=2, mixtures=3)


@pytest.fixture(scope="module")
def client(weights):
    return create_app({"ROBOJAM_WEIGHTS": str(weights)}).test_client()


def static_files() -> list[Path]:
    return sorted(path for path in STATIC_DIR.rglob("*") if path.is_file())


def test_page_is_served_with_csp_and_nosniff(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert b'<canvas id="pad"' in response.data
    csp = {d.split()[0]: d.split()[1:] for d in response.headers["Content-Security-Policy"].split("; ")}
    assert csp["default-src"] == ["'none'"]
    for directive in ("script-src", "connect-src", "style-src", "img-src"):
        assert csp[directive] == ["'self'"], directive
    assert csp["frame-ancestors"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name", [path.name for path in static_files()])
def test_every_static_file_is_served_with_its_type_and_nosniff(client, name):
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.data == (STATIC_DIR / name).read_bytes()
    expected = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}
    assert response.mimetype == expected[Path(name).suffix]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/static/missing.js", "/static/../app.py", "/static/%2e%2e/app.py"])
def test_missing_or_outside_static_files_are_a_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert set(response.get_json()) == {"error"}


def test_page_loads_only_its_own_files_and_no_inline_code():
    html = (STATIC_DIR / "index.html").read_text()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert re.search(r'src="static/[\w.-]+\.js"', tag), f"inline or foreign script: {tag}"
    assert "<style" not in html and " style=" not in html and not re.search(r"\son\w+=", html)
    for path in static_files():
        text = path.read_text()
        urls = set(re.findall(r"\b(?:https?:)?//[\w.-]+\.\w+[^\s\"')]*", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, f"{path.name} refers to another origin: {urls}"
    for module in STATIC_DIR.glob("*.js"):
        for target in re.findall(r'from "(\./[\w.-]+)"', module.read_text()):
            assert (STATIC_DIR / target).is_file(), f"{module.name} imports missing {target}"


def test_api_model_describes_the_loaded_artifact(client, weights):
    response = client.get("/api/model")
    assert response.status_code == 200
    info = response.get_json()
    with np.load(weights) as archive:
        metadata = json.loads(str(archive["metadata"]))
        parameters = sum(archive[key].size for key in archive.files if key != "metadata")
    assert info == {
        "units": 16,
        "layers": 2,
        "mixtures": 3,
        "parameters": parameters,
        "val_nll": None,  # the random artifact records none
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "created": metadata["created"],
        "run": None,  # the random artifact records none (model.export records runs/NAME)
        "precision": "fp32",  # ROBOJAM_PRECISION's default
    }
    jsonschema.validate(info, document()["components"]["schemas"]["ModelInfo"])


def test_api_model_reports_val_nll_and_no_checksum_for_an_engine_given_in_process(tmp_path):
    path = write_random_artifact(tmp_path / "w.npz", units=8, layers=1, mixtures=2, val_nll=-1.25)
    info = create_app(engine=Engine.load(path)).test_client().get("/api/model").get_json()
    assert info["val_nll"] == -1.25 and info["sha256"] is None
    assert info["parameters"] == parameter_count(8, 1, 2, 3) == (3 + 8) * 32 + 32 + 8 * (6 + 6 + 2) + 14


def test_api_model_is_documented():
    operation = document()["paths"]["/api/model"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ModelInfo"}
    properties = document()["components"]["schemas"]["ModelInfo"]["properties"]
    assert {"units", "layers", "mixtures", "parameters", "val_nll", "sha256"} <= set(properties)


def test_static_files_are_package_data_and_enter_the_image():
    package_data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    ignored = PatternMatcher([line.strip() for line in lines if line.strip() and not line.startswith("#")]).matches
    assert static_files(), "service/static is empty"
    for path in static_files():
        relative = path.relative_to(REPO_ROOT / "service").as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in package_data["service"]), relative
        assert not ignored(path.relative_to(REPO_ROOT).as_posix()), f"{relative} is kept out of the image"
