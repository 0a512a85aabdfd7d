"""`make bench-capacity`: the highest load the service as deployed holds within its objective, for infra.costs.

What runs is what a 1-vCPU droplet runs: the shipped weights, the service's default settings (gunicorn with
`service/gunicorn_conf.py`, workers and batching as the image leaves them), Debian's Caddy with the droplet's
Caddyfile (`infra.components.proxy.caddyfile`, as cloud-init writes it) in front, both pinned to one core with
`taskset`; closed-loop clients (`benchmarks.load.load`, the typical request) run on another core through Caddy.
Client levels rise until one breaks the objective (p99 of served requests <= OBJECTIVE_P99_MS, nothing shed,
nothing failed); the capacity is the highest served req/s among the levels that held it. The record
(benchmarks/capacity.json) names the CPU model, the weights' sha256 (infra.costs refuses a record made for other
weights) and the bytes a request and its reply put on the wire (the usage model's egress).

    python -m benchmarks.capacity [--seconds 8] [--clients 1,2,4,8,16,32,64] [--out benchmarks/capacity.json]

Run it on a quiet machine: other load on the machine lowers the figure (the record keeps the load average).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from benchmarks.load import CLIENT_CORE, SERVER_CORE, cpu_model, load, start_server, summarise
from devtools.performances import typical_request
from devtools.ports import free_port
from infra.components.proxy import caddyfile
from infra.costs.measured import sha256_of
from robojam_format.layout import REPO_ROOT, SHIPPED_WEIGHTS

OBJECTIVE_P99_MS = 500.0  # the latency a served request must stay within, at the 99th percentile
LEVELS = (1, 2, 4, 8, 16, 32, 64)
RECORD = REPO_ROOT / "benchmarks" / "capacity.json"
SCHEMA = 1


def holds(row: dict, p99_ms: float = OBJECTIVE_P99_MS) -> bool:
    """A level holds the objective: served requests' p99 within `p99_ms`, none shed (503), none failed."""
    return row["served"] > 0 and row["p99_ms"] <= p99_ms and row["shed_share"] == 0 and row["failed"] == 0


def capacity_of(rows: list[dict], p99_ms: float = OBJECTIVE_P99_MS) -> dict | None:
    """The level with the highest served req/s among those that hold the objective, or None when none does."""
    held = [row for row in rows if holds(row, p99_ms)]
    return max(held, key=lambda row: row["req_per_s"]) if held else None


@contextmanager
def caddy(upstream_port: int, work: Path):
    """Debian's Caddy (the droplet's) with the droplet's Caddyfile, pinned to the server's core; yields its port."""
    binary = shutil.which("caddy")
    if binary is None:
        raise SystemExit("error: make bench-capacity needs caddy (apt-get install caddy), as the droplet runs it.")
    port = free_port()
    config = work / "Caddyfile"
    config.write_text(caddyfile(f":{port}", [f"127.0.0.1:{upstream_port}"], legacy_buffering=True, admin=False))
    env = {**os.environ, "XDG_DATA_HOME": str(work / "data"), "XDG_CONFIG_HOME": str(work / "config")}
    log = (work / "caddy.log").open("wb")
    cmd = ["taskset", "-c", str(SERVER_CORE), binary, "run", "--config", str(config), "--adapter", "caddyfile"]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while _status(port, "/readyz") != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"caddy did not start:\n{(work / 'caddy.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def _status(port: int, path: str) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None


def wire_bytes(port: int, perf: str) -> dict:
    """Bytes one typical request and its reply take on the wire (headers and body), as the client sends them."""
    body = json.dumps({"perf": perf, "seed": 1}).encode()
    head = (
        f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept-Encoding: identity\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/predict", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    reply = response.read()
    status_line = f"HTTP/1.1 {response.status} {response.reason}\r\n"
    headers = "".join(f"{k}: {v}\r\n" for k, v in response.getheaders()) + "\r\n"
    conn.close()
    return {"request": len(head) + len(body), "reply": len(status_line) + len(headers) + len(reply)}


def measure(levels: tuple[int, ...], seconds: float, tmp: Path) -> dict:
    """Run the service and Caddy on one core, raise the client level until the objective breaks; the record."""
    perf = typical_request(seed=7)  # bench-load's request
    before = os.getloadavg()
    server = start_server(SHIPPED_WEIGHTS, 0, tmp / "gunicorn.log", settings={})  # the service's defaults
    rows = []
    try:
        server.wait_ready(timeout=120)
        with caddy(server.port, tmp) as port:
            wire = wire_bytes(port, perf)
            load(port, 1, 1.0, perf)  # settle
            for level in levels:
                row = summarise([load(port, level, seconds, perf)])
                row["holds_objective"] = holds(row)
                rows.append(row)
                print(f"  clients={level}: {row}", flush=True)
                if not row["holds_objective"]:
                    break  # past the knee: more clients only queue
    finally:
        server.stop()
    best = capacity_of(rows)
    if best is None:
        raise SystemExit("error: no client level held the objective; nothing to record")
    return {
        "schema": SCHEMA,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": cpu_model(),
        "vcpus": 1,
        "loadavg_before": [round(x, 2) for x in before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "setup": "gunicorn with the service's defaults and Debian's Caddy "
        f"{_caddy_version()} with the droplet's Caddyfile, both on one core (taskset); clients on another",
        "weights": {"path": str(SHIPPED_WEIGHTS.relative_to(REPO_ROOT)), "sha256": sha256_of(SHIPPED_WEIGHTS)},
        "request": "100 touches, 5 s (devtools.performances.typical_request)",
        "objective": {"p99_ms_at_most": OBJECTIVE_P99_MS, "shed_share": 0.0, "failed": 0},
        "seconds_per_level": seconds,
        "levels": rows,
        "clients_at_capacity": best["clients"],
        "requests_per_second": best["req_per_s"],
        "bytes_per_request": wire,
    }


def _caddy_version() -> str:
    out = subprocess.run(["caddy", "version"], capture_output=True, text=True, check=False).stdout.split()
    return out[0] if out else "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per client level")
    parser.add_argument("--clients", default=",".join(map(str, LEVELS)), help="client levels, comma-separated")
    parser.add_argument("--out", type=Path, default=RECORD)
    parser.add_argument("--note", default="", help="a remark kept in the record (e.g. 'short run, busy machine')")
    args = parser.parse_args(argv)
    if shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("error: make bench-capacity needs taskset and at least 2 CPUs (server and clients apart).")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stopped: still stop the servers (finally)
    os.sched_setaffinity(0, {CLIENT_CORE})
    with tempfile.TemporaryDirectory() as tmp:
        record = measure(tuple(int(c) for c in args.clients.split(",")), args.seconds, Path(tmp))
    if args.note:
        record["note"] = args.note
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"capacity {record['requests_per_second']} req/s on one {record['cpu']} core at "
          f"{record['clients_at_capacity']} clients; wrote {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
