"""The service end to end: a real gunicorn (2 workers, preloaded app) on a free port, over real HTTP.

Weights are a small random artifact (devtools/random_weights.py): these tests need no trained weights.
"""

from __future__ import annotations

import json
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from support.microjam import check_reply, parse_app_csv

from devtools.gunicorn import GunicornProcess, child_pids
from devtools.performances import random_performance
from devtools.random_weights import write_random_artifact

pytestmark = pytest.mark.slow

# A real performance as the MicroJam app sent it (from the original RoboJam server's curl example).
APP_PERF = (
    "time,x,y,z,moving\n"
    "0.002468, 0.106414, 0.122449, 20.000000, 0\n0.020841, 0.106414, 0.125364, 20.000000, 1\n"
    "0.043218, 0.107872, 0.137026, 20.000000, 1\n0.065484, 0.107872, 0.176385, 20.000000, 1\n"
    "0.516467, 0.275510, 0.180758, 20.000000, 0\n0.542726, 0.274052, 0.205539, 20.000000, 1\n"
    "1.000294, 0.590379, 0.179300, 20.000000, 0\n1.022137, 0.593294, 0.183673, 20.000000, 1\n"
    "1.619212, 0.857143, 0.263848, 20.000000, 0\n1.642492, 0.854227, 0.281341, 20.000000, 1\n"
    "4.376275, 0.542274, 0.860058, 20.000000, 0\n4.419554, 0.543732, 0.860058, 20.000000, 1\n"
)
PERF = random_performance(seed=7)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> GunicornProcess:
    tmp = tmp_path_factory.mktemp("service_http")
    weights = write_random_artifact(tmp / "weights.npz", units=64, layers=2, mixtures=5)
    with GunicornProcess(tmp / "gunicorn.log", env={"ROBOJAM_WEIGHTS": str(weights)}) as srv:
        srv.wait_ready()
        yield srv


def predict(server: GunicornProcess, body: dict, **kwargs) -> requests.Response:
    return requests.post(server.url + "/api/predict", json=body, timeout=60, **kwargs)


def reply_of(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["response"]
    return body["response"]


# ---- the app's requests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "perf", [APP_PERF, PERF, random_performance(seed=8, seconds=0.3)], ids=["app", "swipes", "tap"]
)
def test_app_format_request_gets_a_reply_the_app_accepts(server, perf):
    text = reply_of(predict(server, {"perf": perf}))
    touches = check_reply(text, seconds=5.0)
    assert text != perf and len(touches) > 1


@pytest.mark.parametrize("seconds", [0.5, 2.0, 10.0])
def test_requested_length_is_respected(server, seconds):
    check_reply(reply_of(predict(server, {"perf": PERF, "seconds": seconds, "seed": 3})), seconds=seconds)


def test_legacy_form_post_with_json_encoded_perf(server):
    form = requests.post(server.url + "/api/predict", data={"perf": json.dumps(APP_PERF), "seed": "11"}, timeout=60)
    check_reply(reply_of(form), seconds=5.0)
    assert reply_of(form) == reply_of(predict(server, {"perf": APP_PERF, "seed": 11}))


def test_same_seed_same_reply_and_different_seed_different_reply(server):
    body = {"perf": PERF, "seed": 1234, "temperature": 1.2, "sigma_temperature": 0.02}
    first, second = reply_of(predict(server, body)), reply_of(predict(server, body))
    assert first == second
    assert reply_of(predict(server, {**body, "seed": 1235})) != first


def test_options_change_the_sample(server):
    base = {"perf": PERF, "seed": 5}
    replies = {
        reply_of(predict(server, {**base, **extra}))
        for extra in ({}, {"temperature": 0.5}, {"sigma_temperature": 0.5}, {"seconds": 3.0})
    }
    assert len(replies) == 4


def test_sixteen_concurrent_requests_each_equal_their_sequential_reply(server):
    seeds = list(range(100, 116))
    sequential = {seed: reply_of(predict(server, {"perf": PERF, "seed": seed})) for seed in seeds}
    assert len(set(sequential.values())) == len(seeds)
    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = pool.map(lambda s: reply_of(predict(server, {"perf": PERF, "seed": s})), seeds)
        concurrent = dict(zip(seeds, replies, strict=True))
    # Batched, a reply equals its sequential one within float32 rounding, not bit for bit (service/batcher.py).
    for seed in seeds:
        assert_same_touches(concurrent[seed], sequential[seed])


def assert_same_touches(reply: str, expected: str, tolerance: float = 1e-4) -> None:
    """Two replies have the same touches, values equal to `tolerance` (six printed decimals and float32 rounding)."""
    got, want = parse_app_csv(reply), parse_app_csv(expected)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert max(abs(a.time - b.time), abs(a.x - b.x), abs(a.y - b.y)) <= tolerance, (a, b)


def test_unseeded_requests_differ(server):
    assert reply_of(predict(server, {"perf": PERF})) != reply_of(predict(server, {"perf": PERF}))


def test_cors_allows_any_origin_on_the_api(server):
    origin = {"Origin": "https://microjam.example"}
    assert predict(server, {"perf": PERF}, headers=origin).headers["Access-Control-Allow-Origin"] == "*"
    preflight = requests.options(
        server.url + "/api/predict",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]


# ---- bad input: always a 4xx with one JSON sentence ----------------------------------------------------

ROWS_2001 = "time,x,y\n" + "".join(f"{i * 0.01:.2f},0.5,0.5\n" for i in range(2001))
JSON = "application/json"
BAD_REQUESTS = {
    "malformed json": ('{"perf": ', JSON, 400),
    "empty body": ("", JSON, 400),
    "json array": ("[1, 2]", JSON, 400),
    "json string": ('"time,x,y"', JSON, 400),
    "NaN literal": ('{"perf": "time,x,y\\n0,0,0", "seed": NaN}', JSON, 400),
    "invalid utf-8": (b'{"perf": "\xff\xfe"}', JSON, 400),
    "deep nesting": ("[" * 100_000, JSON, 400),
    "huge integer": ('{"perf": "time,x,y\\n0,0,0", "seed": ' + "9" * 5000 + "}", JSON, 400),
    "missing perf": ({}, JSON, 400),
    "perf null": ({"perf": None}, JSON, 400),
    "perf number": ({"perf": 5}, JSON, 400),
    "perf list": ({"perf": ["time,x,y", "0,0,0"]}, JSON, 400),
    "no time column": ({"perf": "x,y,z\n0.1,0.2,0.3\n"}, JSON, 400),
    "no x column": ({"perf": "time,y\n0.1,0.2\n"}, JSON, 400),
    "no y column": ({"perf": "time,x\n0.1,0.2\n"}, JSON, 400),
    "no header": ({"perf": "0.1, 0.2, 0.3, 20.0, 0\n"}, JSON, 400),
    "non-numeric": ({"perf": "time,x,y\n0.1,abc,0.2\n"}, JSON, 400),
    "empty value": ({"perf": "time,x,y\n0.1,,0.2\n"}, JSON, 400),
    "nan value": ({"perf": "time,x,y\n0.1,nan,0.2\n"}, JSON, 400),
    "inf value": ({"perf": "time,x,y\ninf,0.1,0.2\n"}, JSON, 400),
    "short row": ({"perf": "time,x,y,z,moving\n0.1, 0.2\n"}, JSON, 400),
    "zero rows": ({"perf": "time,x,y,z,moving\n"}, JSON, 400),
    "empty perf": ({"perf": ""}, JSON, 400),
    "NUL in csv": ({"perf": "time,x,y\n0.1,0.\x002,0.3\n"}, JSON, 400),
    "temperature string": ({"perf": APP_PERF, "temperature": "1.5"}, JSON, 400),
    "temperature bool": ({"perf": APP_PERF, "temperature": True}, JSON, 400),
    "temperature null": ({"perf": APP_PERF, "temperature": None}, JSON, 400),
    "temperature zero": ({"perf": APP_PERF, "temperature": 0}, JSON, 400),
    "temperature too high": ({"perf": APP_PERF, "temperature": 10.5}, JSON, 400),
    "sigma_temperature zero": ({"perf": APP_PERF, "sigma_temperature": 0.0}, JSON, 400),
    "sigma_temperature too high": ({"perf": APP_PERF, "sigma_temperature": 1.5}, JSON, 400),
    "seconds zero": ({"perf": APP_PERF, "seconds": 0}, JSON, 400),
    "seconds negative": ({"perf": APP_PERF, "seconds": -1}, JSON, 400),
    "seconds over max": ({"perf": APP_PERF, "seconds": 10.01}, JSON, 400),
    "seconds huge": ({"perf": APP_PERF, "seconds": 1e308}, JSON, 400),
    "seed float": ({"perf": APP_PERF, "seed": 1.5}, JSON, 400),
    "seed bool": ({"perf": APP_PERF, "seed": True}, JSON, 400),
    "seed string": ({"perf": APP_PERF, "seed": "7"}, JSON, 400),
    "seed negative": ({"perf": APP_PERF, "seed": -1}, JSON, 400),
    "seed too big": ({"perf": APP_PERF, "seed": 2**64}, JSON, 400),
    "unknown field": ({"perf": APP_PERF, "temprature": 1.0}, JSON, 400),
    "body over 256 KiB": ({"perf": "time,x,y\n" + "0.1,0.2,0.3\n" * 30_000}, JSON, 413),
    "2001 rows": ({"perf": ROWS_2001}, JSON, 413),
    "text/plain": ('{"perf": "time,x,y\\n0,0,0"}', "text/plain", 415),
    "no content type": ('{"perf": "time,x,y\\n0,0,0"}', None, 415),
    "xml": ("<perf/>", "application/xml", 415),
    "form perf not json": ({"perf": "time,x,y\n0,0,0"}, "form", 400),
    "form perf json number": ({"perf": "5"}, "form", 400),
    "form missing perf": ({"seed": "5"}, "form", 400),
    "form seed not json": ({"perf": json.dumps(APP_PERF), "seed": "five"}, "form", 400),
}


def send(server: GunicornProcess, body, content_type) -> requests.Response:
    url = server.url + "/api/predict"
    if content_type == "form":
        return requests.post(url, data=body, timeout=60)
    data = json.dumps(body) if isinstance(body, dict) else body
    data = data.encode() if isinstance(data, str) else data
    headers = {"Content-Type": content_type} if content_type else {}
    return requests.post(url, data=data, headers=headers, timeout=60)


def assert_json_error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    message = body["error"]
    assert isinstance(message, str) and message.endswith(".") and "\n" not in message and len(message) < 300
    assert "Traceback" not in message and "<" not in message.replace("<CSV>", "")
    return message


@pytest.mark.parametrize(("body", "content_type", "status"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_input_gets_a_json_4xx(server, body, content_type, status):
    assert_json_error(send(server, body, content_type), status)


def test_bad_input_errors_name_the_problem(server):
    assert "temprature" in assert_json_error(send(server, *BAD_REQUESTS["unknown field"][:2]), 400)
    assert "'seed'" in assert_json_error(send(server, *BAD_REQUESTS["seed bool"][:2]), 400)
    assert "time" in assert_json_error(send(server, *BAD_REQUESTS["no time column"][:2]), 400)
    assert "2000" in assert_json_error(send(server, *BAD_REQUESTS["2001 rows"][:2]), 413)
    assert "line 2" in assert_json_error(send(server, *BAD_REQUESTS["non-numeric"][:2]), 400)


def test_limits_are_inclusive(server):
    rows = "time,x,y\n" + "".join(f"{i * 0.01:.2f},0.5,0.5\n" for i in range(2000))
    extreme = {"temperature": 10, "sigma_temperature": 1}
    check_reply(reply_of(predict(server, {"perf": rows, "seconds": 5, **extreme})), 5)  # rows x seconds = 10000
    half = "time,x,y\n" + "".join(f"{i * 0.01:.2f},0.5,0.5\n" for i in range(1000))
    check_reply(reply_of(predict(server, {"perf": half, "seconds": 10, **extreme})), 10)
    reply_of(predict(server, {"perf": APP_PERF, "seed": 2**64 - 1}))


def test_rows_times_seconds_over_the_cap_is_413(server):
    rows = "time,x,y\n" + "".join(f"{i * 0.01:.2f},0.5,0.5\n" for i in range(2000))
    response = predict(server, {"perf": rows, "seconds": 10})
    assert response.status_code == 413
    assert response.json() == {
        "error": "the performance has 2000 rows and asks for 10 s; rows x seconds must be at most 10000."
    }


def chunks(data: bytes, size: int = 8192):
    """A generator body: requests sends it chunked, with no Content-Length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("content_type", [JSON, "application/x-www-form-urlencoded"])
def test_chunked_body_over_the_limit_gets_413_not_a_truncated_parse(server, content_type):
    field = json.dumps("time,x,y\n" + "0.1,0.2,0.3\n" * 30_000)
    data = json.dumps({"perf": json.loads(field)}) if content_type == JSON else "perf=" + field
    response = requests.post(
        server.url + "/api/predict",
        data=chunks(data.encode()),
        headers={"Content-Type": content_type},
        timeout=60,
    )
    assert_json_error(response, 413)


def test_chunked_body_under_the_limit_is_answered(server):
    body = json.dumps({"perf": APP_PERF, "seed": 4}).encode()
    response = requests.post(
        server.url + "/api/predict", data=chunks(body, 100), headers={"Content-Type": JSON}, timeout=60
    )
    assert reply_of(response) == reply_of(predict(server, {"perf": APP_PERF, "seed": 4}))


def raw_http(server: GunicornProcess, data: bytes) -> tuple[int, dict, bytes]:
    """Send bytes as they are (no HTTP client to tidy them) and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)  # we have said everything: a short body ends here
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


HEADERS_200 = b"".join(b"X-Filler-%d: y\r\n" % i for i in range(200))
MALFORMED_HTTP = {
    "garbage request line": (b"GARBAGE\r\n\r\n", 400),
    "unknown HTTP version": (b"GET /healthz HTTP/9.9\r\n\r\n", 400),
    "request line too long": (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "too many headers": (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + HEADERS_200 + b"\r\n", 431),
    "bad header name": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400),
    "bad chunk size": (
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        400,
    ),
    "body shorter than content-length": (
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\nConnection: close\r\n\r\n{}",
        400,
    ),
}


@pytest.mark.parametrize(("data", "status"), MALFORMED_HTTP.values(), ids=MALFORMED_HTTP.keys())
def test_malformed_http_gets_a_json_error_too(server, data, status):
    """Errors gunicorn answers before Flask, and bodies it cannot decode: JSON, never HTML or a 5xx."""
    got, headers, body = raw_http(server, data)
    assert got == status, body[:300]
    assert headers["content-type"] == "application/json"
    message = json.loads(body)["error"]
    assert message.endswith(".") and "<" not in message


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_get_405_json(server, method):
    response = requests.request(method, server.url + "/api/predict", timeout=10)
    assert_json_error(response, 405)
    assert "POST" in response.headers["Allow"]


def test_unknown_path_gets_404_json(server):
    assert_json_error(requests.get(server.url + "/api/nothing", timeout=10), 404)


def test_input_is_cleaned_not_rejected(server):
    """Out-of-range x, y and unsorted or long-paused times are clipped as the issue says, then answered."""
    perf = "moving,z,y,x,time,extra\n0,1,-0.5,1.7,3.0,a\n1,1,0.5,0.5,1.0,b\n1,1,2,0.2,60,c\n"
    check_reply(reply_of(predict(server, {"perf": perf})), 5.0)


# ---- operations ----------------------------------------------------------------------------------------


def test_healthz_and_readyz(server):
    health = requests.get(server.url + "/healthz", timeout=10)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = requests.get(server.url + "/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def metric(text: str, name: str, **labels) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 if none)."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def test_metrics_count_requests_by_status_latency_and_in_flight(server):
    get = lambda: requests.get(server.url + "/metrics", timeout=10)  # noqa: E731
    before = get()
    assert before.status_code == 200 and before.headers["Content-Type"].startswith("text/plain")
    for _ in range(3):
        reply_of(predict(server, {"perf": APP_PERF}))
    for _ in range(2):
        assert_json_error(send(server, {}, JSON), 400)
    after = get().text
    total, count = "robojam_http_requests_total", "robojam_http_request_duration_seconds_count"

    def delta(name, **labels):
        return metric(after, name, **labels) - metric(before.text, name, **labels)

    assert delta(total, endpoint="/api/predict", method="POST", status="200") == 3
    assert delta(total, endpoint="/api/predict", method="POST", status="400") == 2
    assert delta(count, endpoint="/api/predict") == 5
    # Summed over both workers: only the /metrics request itself is in flight while it renders.
    assert metric(after, "robojam_http_requests_in_flight") == 1.0


def test_openapi_document_is_served_and_valid(server):
    from openapi_spec_validator import validate

    from service.openapi import document

    response = requests.get(server.url + "/openapi.json", timeout=10)
    assert response.status_code == 200
    validate(response.json())
    assert response.json() == json.loads(json.dumps(document()))


def test_serving_processes_never_load_tensorflow(server):
    """Every gunicorn process (master, workers after serving) maps numpy's C core but no TensorFlow."""
    reply_of(predict(server, {"perf": APP_PERF}))
    pids = [server.proc.pid, *child_pids(server.proc.pid)]
    assert len(pids) == 3, pids  # master + 2 workers
    for pid in pids:
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "_multiarray_umath" in maps, f"pid {pid}: the check must see numpy's shared library"
        assert "tensorflow" not in maps.lower(), f"pid {pid} loaded TensorFlow"
