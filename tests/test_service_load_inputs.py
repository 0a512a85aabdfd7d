"""The small input fixes of issue 11, in process (Flask test client): each one a request that used to go wrong."""

from __future__ import annotations

import numpy as np
import pytest
from support.microjam import check_reply

from devtools.performances import random_performance
from devtools.random_weights import write_random_artifact
from service.app import create_app
from service.engine import Engine
from service.settings import BatchPolicy

PERF = random_performance(seed=21)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    engine = Engine.load(write_random_artifact(tmp_path_factory.mktemp("inputs") / "w.npz", units=32, mixtures=3))
    one_at_a_time = BatchPolicy(max_batch=1)  # replies comparable bit for bit
    app = create_app({"ROBOJAM_BATCH_POLICY": one_at_a_time}, engine=engine)
    return app.test_client()


def reply(client, **body):
    response = client.post("/api/predict", json={"perf": PERF, **body})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["response"]


@pytest.mark.exact
def test_an_integral_float_seed_is_the_integer_seed(client):
    assert reply(client, seed=1.0) == reply(client, seed=1)
    refused = client.post("/api/predict", json={"perf": PERF, "seed": 1.5})
    assert refused.status_code == 400 and "seed" in refused.get_json()["error"]


def test_a_subnormal_temperature_is_served_like_a_tiny_one(client):
    subnormal = reply(client, temperature=5e-324, seed=4)
    check_reply(subnormal, 5.0)
    assert "nan" not in subnormal.lower()
    tiny, sub = (np.array([line.split(",") for line in text.splitlines()[1:]], dtype=float)
                 for text in (reply(client, temperature=1e-300, seed=4), subnormal))  # fmt: skip
    np.testing.assert_allclose(sub, tiny, atol=1e-5)


@pytest.mark.parametrize(
    ("perf", "error"),
    [
        ("time,x,y,x\n0,0.5,0.5,0.1\n", "the header of the performance names the column 'x' more than once."),
        ("time,x,y,time\n0,0.5,0.5,1\n", "the header of the performance names the column 'time' more than once."),
        ("time,x,y\n0,\u0660.5,0.5\n", "the performance, line 2: the 'x' value '\u0660.5' is not a number."),
        ("time,x,y\n0,0.5,\uff11\n", "the performance, line 2: the 'y' value '\uff11' is not a number."),
        ("time,x,y\n0,0.5,0_5\n", "the performance, line 2: the 'y' value '0_5' is not a number."),
    ],
)
def test_duplicate_columns_and_non_ascii_digits_are_refused(client, perf, error):
    response = client.post("/api/predict", json={"perf": perf})
    assert response.status_code == 400 and response.get_json() == {"error": error}


def test_a_header_with_a_byte_order_mark_is_accepted(client):
    assert reply(client, perf="\ufeff" + PERF, seed=8) == reply(client, perf=PERF, seed=8)


def test_a_404_does_not_echo_the_path_unescaped(client):
    response = client.get('/"><img src=x onerror=alert(1)>')
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert "<" not in error and '"' not in error and error.startswith("there is no endpoint at /%22%3E%3Cimg")
    assert len(client.get("/" + "a" * 5000).get_json()["error"]) < 200


def test_every_response_says_nosniff(client):
    for response in (
        client.get("/healthz"),
        client.get("/nope"),
        client.post("/api/predict", json={"perf": PERF}),
        client.post("/api/predict", data="x", content_type="text/plain"),
        client.get("/api/predict"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_rows_times_seconds_is_capped(client):
    rows = "time,x,y\n" + "".join(f"{i * 0.01:.2f},0.5,0.5\n" for i in range(2000))
    response = client.post("/api/predict", json={"perf": rows, "seconds": 6})
    assert response.status_code == 413
    assert "rows x seconds must be at most 10000" in response.get_json()["error"]


def test_an_optional_rate_limit_answers_429_with_retry_after(tmp_path):
    engine = Engine.load(write_random_artifact(tmp_path / "w.npz", units=16, mixtures=2))
    client = create_app({"ROBOJAM_RATE_LIMIT": 60, "ROBOJAM_RATE_BURST": 2}, engine=engine).test_client()
    statuses = [client.post("/api/predict", json={"perf": PERF}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = client.post("/api/predict", json={"perf": PERF})
    assert limited.headers["Retry-After"] == "1"
    assert limited.get_json() == {"error": "too many requests from this client; slow down."}
    other = client.post("/api/predict", json={"perf": PERF}, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert other.status_code == 200  # another client, its own budget
    spoofed = client.post("/api/predict", json={"perf": PERF}, headers={"X-Forwarded-For": "10.9.9.9"})
    assert spoofed.status_code == 429  # the header is not trusted from an untrusted peer
