"""The droplet's rollout script (infra/templates/robojam-rollout.sh) against a fake container engine.

The fake engine (DOCKER=...) keeps its containers in a state file and runs each as a tiny HTTP server on
127.0.0.1 that answers /readyz (an image named *broken* never gets ready). Checked: the new image is pulled
and ready before the old container is stopped, a rerun with the serving image does nothing, and a new image
that never gets ready is removed while the old one keeps serving. Loopback only, bounded by timeouts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from devtools.ports import free_port
from infra.render import TEMPLATE_DIR

SCRIPT = TEMPLATE_DIR / "robojam-rollout.sh"

FAKE_ENGINE = textwrap.dedent(
    r'''
    """A docker-shaped CLI for the rollout script: state in $FAKE_STATE, one HTTP server process per container."""
    import json, os, signal, subprocess, sys, time

    STATE, LOG = os.environ["FAKE_STATE"], os.environ["FAKE_LOG"]
    SERVER = "import http.server as h, sys\n" \
        "class H(h.BaseHTTPRequestHandler):\n" \
        "    def do_GET(self):\n" \
        "        ok = self.path == '/readyz' and 'broken' not in sys.argv[2]\n" \
        "        self.send_response(200 if ok else 503); self.end_headers()\n" \
        "    def log_message(self, *a): pass\n" \
        "h.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n"

    def load():
        return json.load(open(STATE)) if os.path.exists(STATE) else {}

    def save(state):
        json.dump(state, open(STATE, "w"))

    def alive(pid):
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False

    args = sys.argv[1:]
    with open(LOG, "a") as log:
        log.write(" ".join(args) + "\n")
    state = load()
    if args[0] == "inspect":
        fmt, name = args[2], args[3]
        if name not in state:
            sys.exit(1)
        c = state[name]
        print(("true" if alive(c["pid"]) else "false") if "Running" in fmt else c["image"])
    elif args[0] == "pull":
        time.sleep(0.2)
    elif args[0] == "run":
        name = args[args.index("--name") + 1]
        port = int(args[args.index("--publish") + 1].split(":")[1])
        image = args[-1]
        delay = "time.sleep(0.5)\n"  # the app loads before it binds, as gunicorn with preload does
        proc = subprocess.Popen([sys.executable, "-c", "import time\n" + delay + SERVER, str(port), image],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        state[name] = {"pid": proc.pid, "image": image, "port": port}
        save(state)
        print("container-id")
    elif args[0] == "stop":
        name = args[-1]
        os.kill(state[name]["pid"], signal.SIGTERM)
        while alive(state[name]["pid"]):
            try:
                os.waitpid(state[name]["pid"], os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
    elif args[0] == "rm":
        name = args[-1]
        if name in state:
            if alive(state[name]["pid"]):
                os.kill(state[name]["pid"], signal.SIGKILL)
            del state[name]
            save(state)
        elif "--force" not in args:
            sys.exit(1)
    elif args[0] == "logs":
        print("fake log line")
    elif args[0] == "image":
        pass
    elif args[0] == "reload":  # stands in for the proxy's reload (PROXY_RELOAD): log the line it would load
        line = next(l for l in open(os.environ["PROXY_CONFIG"]) if "reverse_proxy" in l)
        with open(LOG, "a") as log:
            log.write("reload " + line.strip() + "\n")
    else:
        sys.exit(f"fake engine: unknown command {args}")
    '''
)


def proxy_config(path: Path, ports) -> None:
    """The droplet's Caddyfile as the program renders it, on these slot ports."""
    from infra.components.proxy import caddyfile

    path.write_text(caddyfile(":80", [f"127.0.0.1:{p}" for p in ports], legacy_buffering=True, admin=True))


def two_free_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


@pytest.fixture
def engine(tmp_path):
    fake = tmp_path / "fake-docker"
    fake.write_text(f"#!{sys.executable}\n{FAKE_ENGINE}")
    fake.chmod(0o755)
    env = {
        **os.environ,
        "DOCKER": str(fake),
        "FAKE_STATE": str(tmp_path / "state.json"),
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "PORTS": " ".join(map(str, two_free_ports())),
        "READY_TIMEOUT": "10",
        "STOP_TIMEOUT": "5",
        "PROXY_CONFIG": str(tmp_path / "Caddyfile"),
        "PROXY_RELOAD": f"{fake} reload",
        "SWITCH_WAIT": "0.1",
    }

    def rollout(image: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(SCRIPT)], env={**env, "IMAGE": image}, capture_output=True, text=True, timeout=60
        )

    proxy_config(tmp_path / "Caddyfile", [int(p) for p in env["PORTS"].split()])
    rollout.calls = lambda: (tmp_path / "calls.log").read_text().splitlines()
    rollout.state = lambda: json.loads((tmp_path / "state.json").read_text())
    rollout.ports = [int(p) for p in env["PORTS"].split()]
    yield rollout
    for container in (rollout.state() if (tmp_path / "state.json").exists() else {}).values():
        try:
            os.kill(container["pid"], 9)
        except OSError:
            pass


def serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def test_blue_green_pulls_and_readies_the_new_image_before_stopping_the_old(engine):
    first = engine("registry.example/robojam@sha256:" + "1" * 64)
    assert first.returncode == 0, first.stdout + first.stderr
    assert set(engine.state()) == {"robojam-a"} and serving(engine.ports[0])

    calls_before = len(engine.calls())
    second = engine("registry.example/robojam@sha256:" + "2" * 64)
    assert second.returncode == 0, second.stdout + second.stderr
    calls = [c.split()[0] + (" " + c.split()[-1] if c.startswith(("stop", "rm")) else "") for c in engine.calls()]
    calls = calls[calls_before:]
    # the old container serves until the new one is ready and the proxy prefers the new one
    assert calls.index("pull") < calls.index("run") < calls.index("reload") < calls.index("stop robojam-a")
    a, b = engine.ports
    assert f"reload reverse_proxy 127.0.0.1:{b} 127.0.0.1:{a} {{" in engine.calls()
    assert set(engine.state()) == {"robojam-b"} and engine.state()["robojam-b"]["image"].endswith("2" * 64)
    assert serving(engine.ports[1]) and not serving(engine.ports[0])
    assert "serves in slot b" in second.stdout


def test_a_rerun_with_the_serving_image_changes_nothing(engine):
    image = "registry.example/robojam:1.0"
    assert engine(image).returncode == 0
    calls_before = len(engine.calls())
    again = engine(image)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert not [c for c in engine.calls()[calls_before:] if c.startswith(("pull", "run", "stop", "rm"))]


def test_an_image_that_never_gets_ready_is_removed_and_the_old_one_keeps_serving(engine):
    assert engine("registry.example/robojam:1.0").returncode == 0
    failed = engine("registry.example/robojam:broken")
    assert failed.returncode == 1
    assert "did not get ready" in failed.stdout and "fake log line" in failed.stderr
    assert set(engine.state()) == {"robojam-a"} and serving(engine.ports[0])


def test_a_proxy_config_without_the_slots_line_stops_before_anything_starts(engine, tmp_path):
    assert engine("registry.example/robojam:1.0").returncode == 0
    (tmp_path / "Caddyfile").write_text(":80 {\n\treverse_proxy 127.0.0.1:9 {\n\t}\n}\n")
    failed = engine("registry.example/robojam:2.0")
    assert failed.returncode == 1 and "has no 'reverse_proxy" in failed.stdout + failed.stderr
    assert set(engine.state()) == {"robojam-a"} and serving(engine.ports[0])  # nothing new was started


def test_the_script_refuses_to_run_without_an_image(tmp_path):
    result = subprocess.run(["bash", str(SCRIPT)], env={"PATH": os.environ["PATH"]}, capture_output=True, text=True)
    assert result.returncode != 0 and "set IMAGE" in result.stderr


def test_the_script_documents_its_interface_in_its_header():
    header = Path(SCRIPT).read_text().split("set -euo pipefail", 1)[0]
    for variable in ("IMAGE", "DOCKER", "NAME", "HOST", "PORTS", "CONTAINER_PORT", "READY_PATH", "STOP_TIMEOUT"):
        assert f"#   {variable}" in header, variable
    assert "podman" in header
