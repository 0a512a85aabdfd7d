"""The service under load and abuse, through real gunicorn on 127.0.0.1 (issue 11). Every test is bounded in
requests and time and stops by itself.

What it checks: overload is shed as fast 503s with Retry-After and the queue never passes its bound; probes answer
while the worker is saturated; slow-header, stalled-body and idle-socket attackers cannot stop a normal client;
SIGTERM completes in-flight requests; a killed worker loses only its in-flight requests; start-up problems are one
line with nothing left behind; metric labels are bounded; BLAS threads are pinned.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from support import require
from support.microjam import check_reply

from devtools.gunicorn import VENV_BIN, GunicornProcess, child_pids
from devtools.performances import app_csv, random_performance
from devtools.random_weights import write_random_artifact
from robojam_format.layout import REPO_ROOT, SHIPPED_WEIGHTS

pytestmark = pytest.mark.slow
PERF = random_performance(seed=11)
GUNICORN = [str(VENV_BIN / "gunicorn"), "-c", "service/gunicorn_conf.py", "service.app:create_app()"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_random_artifact(tmp_path_factory.mktemp("load") / "w.npz", units=64, mixtures=5)


def predict(url: str, body: dict | None = None, timeout: float = 30) -> requests.Response:
    return requests.post(url + "/api/predict", json=body or {"perf": PERF}, timeout=timeout)


def gauge(metrics_text: str, name: str) -> float:
    match = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", metrics_text, re.M)
    return float(match.group(1)) if match else 0.0


def test_overload_is_shed_with_503_and_retry_after_and_probes_still_answer(tmp_path, weights):
    env = {"ROBOJAM_WEIGHTS": str(weights), "ROBOJAM_WORKERS": "1", "ROBOJAM_QUEUE_COST": "1000"}
    with GunicornProcess(tmp_path / "overload.log", env=env) as server:
        server.wait_ready()
        stop = threading.Event()
        queue_seen, probe_seconds, probe_status = [], [], []

        def watch():
            while not stop.is_set():
                start = time.perf_counter()
                health = requests.get(server.url + "/healthz", timeout=2)  # GKE's liveness timeout
                probe_seconds.append(time.perf_counter() - start)
                probe_status.append(health.status_code)
                queue_seen.append(
                    gauge(requests.get(server.url + "/metrics", timeout=5).text, "robojam_queue_cost_steps")
                )
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with ThreadPoolExecutor(max_workers=48) as pool:
                body = {"perf": PERF, "seconds": 5.0}  # ~100 rows: cost ~ 200, so about 5 fit in the queue
                responses = list(pool.map(lambda _: predict(server.url, body), range(240)))
        finally:
            stop.set()
            watcher.join(30)
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 503}, statuses
        shed = [r for r in responses if r.status_code == 503]
        assert shed, "48 concurrent clients against a 1000-step queue must be shed"
        for response in shed:
            assert response.headers["Retry-After"].isdigit()
            assert response.json() == {"error": "the server is at capacity; retry in a moment."}
        for response in responses:
            if response.status_code == 200:
                check_reply(response.json()["response"], 5.0)
        assert queue_seen and max(queue_seen) <= 1000  # admitted work never passed the bound
        assert probe_status and set(probe_status) == {200}
        probe_seconds.sort()
        print(f"/healthz under load: median {probe_seconds[len(probe_seconds) // 2] * 1000:.1f} ms, "
              f"max {probe_seconds[-1] * 1000:.1f} ms over {len(probe_seconds)} probes")  # fmt: skip
        metrics = requests.get(server.url + "/metrics", timeout=5).text
        assert 'robojam_requests_shed_total{reason="QueueFull"}' in metrics
        assert "robojam_batch_size_bucket" in metrics


PROBE = """
import json, sys, time, http.client
port, count, budget = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
time.sleep(1.0)  # the load saturates the worker first
times, failures = [], []
for _ in range(count):
    start = time.perf_counter()
    try:  # a new connection per probe, as the kubelet makes
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=budget)
        conn.request("GET", "/healthz")
        status = conn.getresponse().status
        conn.close()
    except OSError as exc:
        failures.append(repr(exc))
        continue
    times.append(time.perf_counter() - start)
    if status != 200:
        failures.append(status)
    time.sleep(0.05)
print(json.dumps({"times": times, "failures": failures}))
"""

LOAD = """
import json, sys, threading, time, http.client
port, clients, seconds, body = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
statuses, lock, stop_at = [], threading.Lock(), time.monotonic() + seconds
def client():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < stop_at:
        conn.request("POST", "/api/predict", body, {"Content-Type": "application/json"})
        reply = conn.getresponse()
        reply.read()
        with lock:
            statuses.append(reply.status)
        if reply.status == 503:  # as the app and load balancers do: wait as told
            time.sleep(float(reply.headers.get("Retry-After", "1")))
threads = [threading.Thread(target=client) for _ in range(clients)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(statuses))
"""


def test_healthz_answers_within_100_ms_while_the_worker_is_saturated(tmp_path):
    """The issue's bound for the liveness probe. As on a 1 vCPU pod or droplet: one worker with the shipped weights
    pinned to one core; 24 clients (honouring Retry-After) keep it saturated, serving and shedding, from another
    core; a separate process there (as the kubelet is) probes /healthz on a new connection every 50 ms with a 100 ms
    budget for connecting and the answer. All 100 probes must answer 200 within the budget."""
    cores = sorted(os.sched_getaffinity(0))
    assert len(cores) >= 2, "this test needs 2 CPUs: the worker on one, the clients and the probe on the other"
    require(shutil.which("taskset") is not None, "taskset (util-linux) pins the worker to one core")
    server_core, client_core = str(cores[0]), str(cores[1])
    env = {"ROBOJAM_WEIGHTS": str(SHIPPED_WEIGHTS), "ROBOJAM_WORKERS": "1", "ROBOJAM_QUEUE_COST": "1000"}
    cmd = ["taskset", "-c", server_core, *GUNICORN]
    with GunicornProcess(tmp_path / "probe.log", env=env, cmd=cmd) as server:
        server.wait_ready()
        body = json.dumps({"perf": PERF, "seconds": 5.0})
        pinned = ["taskset", "-c", client_core, sys.executable, "-c"]
        load = subprocess.Popen([*pinned, LOAD, str(server.port), "24", "8", body], stdout=subprocess.PIPE, text=True)
        try:
            probe = subprocess.run(
                [*pinned, PROBE, str(server.port), "100", "0.1"], capture_output=True, text=True, timeout=60, check=True
            )
        finally:
            statuses = json.loads(load.communicate(timeout=60)[0])
    assert 200 in statuses and 503 in statuses, "the worker must be serving and shedding while probed"
    assert set(statuses) <= {200, 503}
    result = json.loads(probe.stdout)
    assert result["failures"] == [], result["failures"]
    assert len(result["times"]) == 100 and max(result["times"]) < 0.1
    times = sorted(result["times"])
    print(f"/healthz while saturated: median {times[50] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")


def _slow_header(port: int, stop: threading.Event) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\n")
        for _ in range(200):
            if stop.wait(0.2):
                return
            try:
                sock.sendall(b"X")
            except OSError:
                return  # closed by the server's read deadline


def read_reply(sock: socket.socket) -> str:
    """One whole HTTP response (headers and a Content-Length body) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
        re.search(rb"Content-Length: (\d+)", data).group(1) if b"Content-Length" in data else 1
    ):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode("latin-1")


def test_slow_and_idle_sockets_do_not_stop_a_normal_client(tmp_path, weights):
    env = {"ROBOJAM_WEIGHTS": str(weights), "ROBOJAM_WORKERS": "1", "ROBOJAM_READ_TIMEOUT": "3"}
    with GunicornProcess(tmp_path / "slow.log", env=env) as server:
        server.wait_ready()
        stop, sockets = threading.Event(), []
        dribblers = [threading.Thread(target=_slow_header, args=(server.port, stop)) for _ in range(2)]
        try:
            for _ in range(24):  # idle: connect, say nothing
                sockets.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
            stalled = []
            for _ in range(2):  # announce 1000 bytes, send 10
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 1000\r\n\r\n{\"perf\": ")  # fmt: skip
                stalled.append(sock)
            for thread in dribblers:
                thread.start()
            time.sleep(0.5)
            for _ in range(5):  # a normal client is served at once, every time
                assert requests.get(server.url + "/healthz", timeout=1).status_code == 200
                check_reply(predict(server.url, timeout=1).json()["response"], 5.0)
            for sock in stalled:  # the stalled body is answered 408 once its read deadline passes
                reply = read_reply(sock)
                assert reply.startswith("HTTP/1.1 408"), reply
                assert reply.endswith('{"error":"the request body did not arrive in time."}\n'), reply
        finally:
            stop.set()
            for thread in dribblers:
                thread.join(10)
            for sock in sockets + stalled:
                sock.close()


def test_the_slow_client_check_can_fail_with_too_few_threads(tmp_path, weights):
    """Control: with gunicorn's old 2 threads, 24 idle sockets do hold up a normal client (as in issue 11)."""
    env = {"ROBOJAM_WEIGHTS": str(weights), "ROBOJAM_WORKERS": "1", "ROBOJAM_THREADS": "2"}
    with GunicornProcess(tmp_path / "control.log", env=env) as server:
        server.wait_ready()
        sockets = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(24)]
        try:
            time.sleep(0.2)
            with pytest.raises(requests.Timeout):
                for _ in range(5):
                    requests.get(server.url + "/healthz", timeout=1)
        finally:
            for sock in sockets:
                sock.close()


def test_busy_kept_alive_clients_leave_other_connections_a_thread(tmp_path, weights):
    """A thread serves its kept-alive connection's next request itself only while every connection can have a
    thread (service/worker.py): two busy kept-alive clients on 2 threads still leave a third connection served."""
    env = {"ROBOJAM_WEIGHTS": str(weights), "ROBOJAM_WORKERS": "1", "ROBOJAM_THREADS": "2"}
    with GunicornProcess(tmp_path / "keep.log", env=env) as server:
        server.wait_ready()
        stop, answered = threading.Event(), []

        def busy():
            session = requests.Session()
            while not stop.is_set():
                answered.append(session.get(server.url + "/healthz", timeout=10).status_code)

        clients = [threading.Thread(target=busy) for _ in range(2)]
        for client in clients:
            client.start()
        try:
            time.sleep(0.3)
            for _ in range(5):
                assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
        finally:
            stop.set()
            for client in clients:
                client.join(15)
        assert set(answered) == {200} and len(answered) > 10


def test_sigterm_completes_the_requests_in_flight(tmp_path):
    weights = write_random_artifact(tmp_path / "w256.npz", units=256, mixtures=5)  # slow enough to catch in flight
    env = {"ROBOJAM_WEIGHTS": str(weights), "ROBOJAM_WORKERS": "1"}
    long = app_csv([(0.01 * i, 0.5, 0.5, 20.0, 1) for i in range(1000)])
    with GunicornProcess(tmp_path / "term.log", env=env) as server:
        server.wait_ready()
        with ThreadPoolExecutor(max_workers=5) as pool:  # 5 x 1200 steps fit the default queue of 6400
            futures = [pool.submit(predict, server.url, {"perf": long, "seconds": 10.0}) for _ in range(5)]
            deadline = time.monotonic() + 20
            while gauge(requests.get(server.url + "/metrics", timeout=5).text, "robojam_queue_requests") < 5:
                assert time.monotonic() < deadline, "the requests never got in flight"
                time.sleep(0.01)
            server.proc.send_signal(signal.SIGTERM)
            replies = [future.result(timeout=60) for future in futures]
        assert [r.status_code for r in replies] == [200] * 5
        for reply in replies:
            check_reply(reply.json()["response"], 10.0)
        assert server.proc.wait(timeout=40) == 0


def test_a_killed_worker_loses_only_its_in_flight_requests(tmp_path, weights):
    env = {"ROBOJAM_WEIGHTS": str(weights), "ROBOJAM_WORKERS": "2"}
    with GunicornProcess(tmp_path / "kill.log", env=env) as server:
        server.wait_ready()
        outcomes, stop = [], threading.Event()

        def client():
            session = requests.Session()
            while not stop.is_set():
                try:
                    outcomes.append(
                        session.post(server.url + "/api/predict", json={"perf": PERF}, timeout=30).status_code
                    )
                except requests.RequestException:
                    outcomes.append("lost")
                    session = requests.Session()

        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        victim = child_pids(server.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join(60)
        assert outcomes.count("lost") <= 4  # at most the requests that were in flight on the victim
        assert set(outcomes) <= {200, "lost"} and outcomes.count(200) > 10
        server.wait_ready()
        assert victim not in child_pids(server.proc.pid) and len(child_pids(server.proc.pid)) == 2


def worker_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_sustained_load_has_no_failures_and_flat_memory(tmp_path, weights):
    env = {"ROBOJAM_WEIGHTS": str(weights), "ROBOJAM_WORKERS": "1"}
    with GunicornProcess(tmp_path / "sustained.log", env=env) as server:
        server.wait_ready()
        worker = child_pids(server.proc.pid)[0]
        statuses, stop = [], threading.Event()

        def client(index: int):
            session, seed = requests.Session(), index * 100_000
            while not stop.is_set():
                seed += 1
                statuses.append(
                    session.post(server.url + "/api/predict", json={"perf": PERF, "seed": seed}, timeout=30).status_code
                )

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(5)
        rss_start = worker_rss_kb(worker)
        time.sleep(55)
        rss_end = worker_rss_kb(worker)
        stop.set()
        for thread in threads:
            thread.join(60)
        assert len(statuses) > 100 and set(statuses) == {200}
        assert rss_end < rss_start * 1.10, (rss_start, rss_end)


# ---- start-up problems: one line, nothing left behind --------------------------------------------------------


def start_and_fail(env: dict) -> subprocess.CompletedProcess:
    full = {**os.environ, "ROBOJAM_BIND": "127.0.0.1:0", **env}
    return subprocess.run(GUNICORN, cwd=REPO_ROOT, env=full, capture_output=True, text=True, timeout=60)


def shm_metrics_dirs() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob("robojam-metrics-*")} if Path("/dev/shm").is_dir() else set()


def test_a_bad_weights_file_is_one_line_and_leaks_nothing(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    before = shm_metrics_dirs()
    done = start_and_fail({"ROBOJAM_WEIGHTS": str(junk), "PROMETHEUS_MULTIPROC_DIR": ""})
    assert done.returncode != 0
    output = (done.stdout + done.stderr).strip()
    assert output.splitlines() == [f"robojam: cannot start: {junk}: not an .npz archive (not a zip file)."]
    assert shm_metrics_dirs() == before


def test_an_unusable_metrics_dir_is_one_line(tmp_path, weights):
    a_file = tmp_path / "file"
    a_file.write_text("")
    done = start_and_fail({"ROBOJAM_WEIGHTS": str(weights), "PROMETHEUS_MULTIPROC_DIR": str(a_file / "sub")})
    assert done.returncode != 0
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("robojam: cannot start: the metrics directory"), lines


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 2 MiB tmpfs: room for the metric files of the master and one worker (1.5 MiB), not for five."""
    mount = tmp_path / "shm"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    require(done.returncode == 0, f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_metrics_dir_is_one_line_at_start(tmp_path, weights, tiny_tmpfs):
    done = start_and_fail(
        {"ROBOJAM_WEIGHTS": str(weights), "PROMETHEUS_MULTIPROC_DIR": str(tiny_tmpfs), "ROBOJAM_WORKERS": "4"}
    )
    assert done.returncode != 0
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "cannot hold" in lines[0] and "No space left" in lines[0], lines
    assert list(tiny_tmpfs.iterdir()) == []


def test_a_worker_that_cannot_reserve_metrics_serves_without_them(tmp_path, weights, tiny_tmpfs):
    env = {"ROBOJAM_WEIGHTS": str(weights), "PROMETHEUS_MULTIPROC_DIR": str(tiny_tmpfs), "ROBOJAM_WORKERS": "1"}
    with GunicornProcess(tmp_path / "full.log", env=env) as server:
        server.wait_ready()
        filler = tiny_tmpfs / "filler"
        with filler.open("wb") as f:  # fill what is left
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        victim = child_pids(server.proc.pid)[0]
        os.kill(victim, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while victim in child_pids(server.proc.pid) or not child_pids(server.proc.pid):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        server.wait_ready()
        check_reply(predict(server.url).json()["response"], 5.0)  # serving goes on
        assert "metrics are off in process" in server.log()
        assert server.proc.poll() is None


# ---- small things ---------------------------------------------------------------------------------------------


def test_metric_labels_are_bounded_and_every_response_says_nosniff(tmp_path, weights):
    env = {"ROBOJAM_WEIGHTS": str(weights), "ROBOJAM_WORKERS": "1"}
    with GunicornProcess(tmp_path / "labels.log", env=env) as server:
        server.wait_ready()
        for i in range(30):
            requests.request(f"MADEUP{i}", server.url + "/healthz", timeout=10)
        text = requests.get(server.url + "/metrics", timeout=10).text
        assert "MADEUP" not in text and 'method="other"' in text
        missing = requests.get(server.url + "/<script>alert(1)</script>", timeout=10)
        assert missing.status_code == 404 and "<script>" not in missing.text
        assert missing.json() == {"error": "there is no endpoint at /%3Cscript%3Ealert%281%29%3C/script%3E."}
        for response in (missing, requests.get(server.url + "/healthz", timeout=10), predict(server.url)):
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:  # gunicorn's own error
            sock.sendall(b"GARBAGE\r\n\r\n")
            assert b"X-Content-Type-Options: nosniff" in sock.recv(4096)


def test_blas_threads_are_pinned_to_one_by_the_gunicorn_config(tmp_path, weights):
    code = (
        "import ctypes, glob, os, runpy, sys\n"
        "if sys.argv[1] == 'config': runpy.run_path('service/gunicorn_conf.py')\n"
        "import numpy\n"
        "lib = glob.glob(os.path.join(os.path.dirname(numpy.__file__) + '.libs', 'libscipy_openblas*'))\n"
        "print(ctypes.CDLL(lib[0]).scipy_openblas_get_num_threads64_() if lib else 'none')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env.update({"ROBOJAM_WEIGHTS": str(weights), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})

    def threads(mode: str) -> str:
        done = subprocess.run([sys.executable, "-c", code, mode], cwd=REPO_ROOT, env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    require(threads("plain") != "none", "NumPy's bundled OpenBLAS was not found")
    assert threads("config") == "1"
    if len(os.sched_getaffinity(0)) > 1:
        assert threads("plain") != "1"  # the check can fail: unpinned, OpenBLAS would use every CPU
