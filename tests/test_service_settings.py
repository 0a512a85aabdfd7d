"""service.settings, the one reader of the environment: the weights path, and the bind/TLS parse that the gunicorn
config and the container healthcheck share."""

from __future__ import annotations

import pytest

from devtools.random_weights import write_random_artifact
from robojam_format.layout import REPO_ROOT, SHIPPED_WEIGHTS
from service import healthcheck, settings
from service.engine import Engine


def test_artifact_path_resolution(tmp_path, monkeypatch):
    path = write_random_artifact(tmp_path / "env.npz", units=8, layers=1, mixtures=2)
    monkeypatch.setenv("ROBOJAM_WEIGHTS", str(path))
    assert settings.weights_path() == path
    assert Engine.load().metadata["units"] == 8
    explicit = write_random_artifact(tmp_path / "explicit.npz", units=12, layers=1, mixtures=2)
    assert Engine.load(explicit).metadata["units"] == 12
    monkeypatch.delenv("ROBOJAM_WEIGHTS")
    assert settings.weights_path() == SHIPPED_WEIGHTS == REPO_ROOT / "model" / "weights" / "robojam.npz"


@pytest.mark.parametrize(
    ("bind", "tls", "url"),
    [
        ("0.0.0.0:5000", False, "http://127.0.0.1:5000/healthz"),
        ("127.0.0.1:8080,0.0.0.0:9090", False, "http://127.0.0.1:8080/healthz"),
        ("[::]:5000", True, "https://[::1]:5000/healthz"),
        ("10.0.0.5:7000", False, "http://10.0.0.5:7000/healthz"),
    ],
)
def test_healthcheck_follows_bind_and_tls(monkeypatch, bind, tls, url):
    monkeypatch.setenv("ROBOJAM_BIND", bind)
    if tls:
        monkeypatch.setenv("ROBOJAM_CERTFILE", "/etc/cert.pem")
    else:
        monkeypatch.delenv("ROBOJAM_CERTFILE", raising=False)
    assert healthcheck.url() == url


def test_listen_is_parsed_once_for_gunicorn_and_the_healthcheck():
    parsed = settings.listen({"ROBOJAM_BIND": " 0.0.0.0:8080 , ,[::]:9090", "ROBOJAM_CERTFILE": "/c.pem"})
    assert parsed.addresses == ["0.0.0.0:8080", "[::]:9090"] and parsed.scheme == "https"
    with pytest.raises(ValueError, match="set both ROBOJAM_CERTFILE and ROBOJAM_KEYFILE"):
        parsed.check_tls()
    default = settings.listen({"ROBOJAM_BIND": " "})
    assert default.addresses == ["127.0.0.1:5000"] and default.scheme == "http"
    default.check_tls()  # neither file: plain HTTP is fine


def test_only_settings_reads_the_environment():
    """No other service module touches os.environ or os.getenv: each variable has one reader and one parser."""
    import ast

    offenders = []
    for path in sorted((REPO_ROOT / "service").rglob("*.py")):
        if path.name == "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.alias):  # from os import environ
                name = node.name
            else:
                continue
            if name in ("environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_the_batching_knobs_are_one_policy_read_from_the_environment():
    assert settings.batch_policy({}) == settings.BatchPolicy(max_batch=32, wait_seconds=0.002)
    parsed = settings.batch_policy({"ROBOJAM_MAX_BATCH": "1", "ROBOJAM_BATCH_WAIT_MS": "0"})
    assert parsed == settings.BatchPolicy(max_batch=1, wait_seconds=0.0) and not parsed.batched
    assert settings.from_env({"ROBOJAM_MAX_BATCH": "8"})["ROBOJAM_BATCH_POLICY"].max_batch == 8
    with pytest.raises(ValueError, match="ROBOJAM_MAX_BATCH must be at least 1, got 0."):
        settings.batch_policy({"ROBOJAM_MAX_BATCH": "0"})
    with pytest.raises(ValueError, match="max_batch must be at least 1, got 0."):
        settings.BatchPolicy(max_batch=0)
