"""The Flask app in process: readiness gate, settings, CORS config, OpenAPI."""

from __future__ import annotations

import json
import re
import threading

import pytest
from openapi_spec_validator import validate
from support import require
from support.microjam import check_reply

from devtools.performances import app_csv
from devtools.random_weights import write_random_artifact
from robojam_format.artifact import ArtifactError
from robojam_format.layout import SHIPPED_WEIGHTS
from service import readiness as readiness_module
from service.app import create_app
from service.engine import Engine
from service.openapi import document
from service.predict import PredictRequest

PERF = app_csv([(0.05 * i, 0.3 + 0.01 * i, 0.5, 20.0, int(i > 0)) for i in range(40)])


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    return Engine.load(write_random_artifact(tmp_path_factory.mktemp("w") / "w.npz", units=32, mixtures=3))


class GatedEngine:
    """The real engine behind a gate: the first call (the warm-up) waits for `release`, then maybe fails."""

    def __init__(self, engine: Engine, fail: bool = False):
        self.engine, self.fail = engine, fail
        self.precision = engine.precision  # the app reports it (/api/model, /metrics)
        self.release, self.calls = threading.Event(), 0

    def continue_performance(self, events, **kwargs):
        self.calls += 1
        if self.calls == 1:
            assert self.release.wait(30)
            if self.fail:
                raise RuntimeError("weights produce NaN")
        return self.engine.continue_performance(events, **kwargs)


def wait_for(client, status: int) -> dict:
    for _ in range(300):
        response = client.get("/readyz")
        if response.status_code == status:
            return response.get_json()
        threading.Event().wait(0.02)
    raise AssertionError(f"/readyz never answered {status}")


def test_readyz_is_503_until_the_warm_up_inference_finishes(engine):
    gated = GatedEngine(engine)
    client = create_app(engine=gated).test_client()
    first = client.get("/readyz")
    assert first.status_code == 503 and first.get_json()["status"] == "not ready"
    assert "warm" in first.get_json()["reason"]
    assert client.get("/healthz").status_code == 200  # alive while not ready
    gated.release.set()
    assert wait_for(client, 200) == {"status": "ready"}
    assert gated.calls == 1  # one warm-up per process, not one per probe


def test_failed_warm_up_keeps_readyz_503_with_the_reason(engine):
    gated = GatedEngine(engine, fail=True)
    client = create_app(engine=gated).test_client()
    client.get("/healthz")
    gated.release.set()
    body = wait_for(client, 503)
    for _ in range(100):
        body = client.get("/readyz").get_json()
        if "failed" in body["reason"]:
            break
        threading.Event().wait(0.02)
    assert body["reason"] == "warm-up inference failed: weights produce NaN"


def test_readiness_is_per_process(monkeypatch):
    """A forked worker inherits 'ready' from the master's objects but must warm up itself."""
    calls = []
    ready = readiness_module.Readiness(lambda: calls.append(1))
    ready.start()
    assert ready.wait(10) and ready.status == (True, "ready")
    ready.start()
    assert calls == [1]
    monkeypatch.setattr(readiness_module.os, "getpid", lambda: -1)
    assert ready.status[0] is False
    ready.start()
    assert ready.wait(10) and ready.status[0] and calls == [1, 1]


def test_unexpected_error_is_a_json_500_without_internals(engine):
    class Broken:
        precision = "fp32"

        def continue_performance(self, events, **kwargs):
            raise RuntimeError("secret internal detail")

    client = create_app(engine=Broken()).test_client()
    response = client.post("/api/predict", json={"perf": PERF})
    assert response.status_code == 500 and response.is_json
    assert "secret" not in response.get_data(as_text=True)
    assert list(response.get_json()) == ["error"]


def test_limits_come_from_env(engine, monkeypatch):
    monkeypatch.setenv("ROBOJAM_MAX_ROWS", "10")
    monkeypatch.setenv("ROBOJAM_MAX_BODY_BYTES", "2000")
    client = create_app(engine=engine).test_client()
    ten = app_csv([(0.1 * i, 0.5, 0.5, 20.0, 1) for i in range(10)])
    assert client.post("/api/predict", json={"perf": ten}).status_code == 200
    eleven = app_csv([(0.1 * i, 0.5, 0.5, 20.0, 1) for i in range(11)])
    assert client.post("/api/predict", json={"perf": eleven}).get_json() == {
        "error": "the performance has more than 10 rows."
    }
    big = client.post("/api/predict", json={"perf": "time,x,y\n" + "0.1,0.2,0.3\n" * 200})
    assert big.status_code == 413 and "2000 bytes" in big.get_json()["error"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ROBOJAM_MAX_ROWS", "many", "ROBOJAM_MAX_ROWS must be an integer, got 'many'."),
        ("ROBOJAM_MAX_BODY_BYTES", "0", "ROBOJAM_MAX_BODY_BYTES must be at least 1, got 0."),
        ("ROBOJAM_PRECISION", "int4", "ROBOJAM_PRECISION must be one of fp32, int8, got 'int4'."),
    ],
)
def test_bad_env_settings_fail_with_a_clear_message(engine, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as raised:
        create_app(engine=engine)
    assert str(raised.value) == message


def test_missing_weights_fail_at_startup_naming_the_file(tmp_path, monkeypatch):
    missing = tmp_path / "nope.npz"
    monkeypatch.setenv("ROBOJAM_WEIGHTS", str(missing))
    with pytest.raises(ArtifactError, match=re.escape(str(missing))):
        create_app()


@pytest.mark.parametrize(
    ("origins", "origin", "allowed"),
    [
        ("https://a.example, https://b.example", "https://b.example", "https://b.example"),
        ("https://a.example", "https://evil.example", None),
        ("", "https://a.example", None),
    ],
)
def test_cors_origins_are_configurable(engine, monkeypatch, origins, origin, allowed):
    monkeypatch.setenv("ROBOJAM_CORS_ORIGINS", origins)
    client = create_app(engine=engine).test_client()
    response = client.post("/api/predict", json={"perf": PERF}, headers={"Origin": origin})
    assert response.status_code == 200
    assert response.headers.get("Access-Control-Allow-Origin") == allowed
    assert "Access-Control-Allow-Origin" not in client.get("/healthz", headers={"Origin": origin}).headers


def test_openapi_is_valid_and_matches_routes_and_fields(engine):
    spec = document()
    validate(spec)
    app = create_app(engine=engine)
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())  # Flask's <path:name> is {name}
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert documented == routes
    schema = spec["components"]["schemas"]["PredictRequest"]
    assert set(schema["properties"]) == set(PredictRequest.model_fields) and schema["required"] == ["perf"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["temperature"]["maximum"] == 10 and schema["properties"]["seconds"]["maximum"] == 10
    json.dumps(spec)  # serialisable as served


def test_documented_defaults_are_the_served_defaults(engine):
    """A request with the documented defaults spelled out equals one that leaves them out."""
    fields = document()["components"]["schemas"]["PredictRequest"]["properties"]
    defaults = {name: fields[name]["default"] for name in ("temperature", "sigma_temperature", "seconds")}
    assert defaults == {"temperature": 1.0, "sigma_temperature": 0.1, "seconds": 5.0}  # the quality sweep's
    client = create_app(engine=engine).test_client()
    wait_for(client, 200)  # not batched with the warm-up: a batch can change float32 rounding (service/batcher.py)
    plain = client.post("/api/predict", json={"perf": PERF, "seed": 3}).get_json()
    spelled = client.post("/api/predict", json={"perf": PERF, "seed": 3, **defaults}).get_json()
    assert plain == spelled and "response" in plain


def test_shipped_weights_are_the_default(monkeypatch):
    require(SHIPPED_WEIGHTS.is_file(), f"trained weights not shipped yet at {SHIPPED_WEIGHTS}")
    monkeypatch.delenv("ROBOJAM_WEIGHTS", raising=False)
    app = create_app()
    engine = app.extensions["robojam"].engine
    assert engine.metadata["format"] == "robojam-mdrnn-weights"
    response = app.test_client().post("/api/predict", json={"perf": PERF, "seed": 1})
    assert response.status_code == 200
    check_reply(response.get_json()["response"], seconds=5.0)


def test_the_batcher_runs_the_configured_policy(engine, monkeypatch):
    monkeypatch.setenv("ROBOJAM_MAX_BATCH", "3")
    monkeypatch.setenv("ROBOJAM_BATCH_WAIT_MS", "7")
    batcher = create_app(engine=engine).extensions["robojam"].batcher
    assert (batcher.policy.max_batch, batcher.policy.wait_seconds, batcher.batched) == (3, 0.007, True)
    monkeypatch.setenv("ROBOJAM_MAX_BATCH", "1")
    assert not create_app(engine=engine).extensions["robojam"].batcher.batched
