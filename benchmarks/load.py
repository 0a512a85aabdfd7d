"""`make bench-load`: the service under concurrent load, batching off vs on, in one run (not a test).

One gunicorn worker with the service's own config, pinned to one core with `taskset` (a 1 vCPU droplet), on
127.0.0.1; the clients run in this process, pinned to another core. For each weights file (the shipped 2x256 and
random 2x512 weights from `devtools.random_weights`) and each setting (ROBOJAM_MAX_BATCH=1, i.e. off, and the
default), closed-loop clients at 1, 4, 16 and 64 concurrent each send the typical request (100 touches, about 5 s:
`devtools.performances.typical_request`, a fresh sampling seed each time) for a fixed time, split into rounds
that alternate the two settings; a client told 503 waits Retry-After seconds. Reported: served req/s, p50 and
p99 of served requests, the share answered 503, and the worker's RSS before and after.
Raw results: benchmarks/load.json.

    python -m benchmarks.load [--seconds 8] [--out benchmarks/load.json] [--table RESULTS.json]
                              [--clients 1,16] [--models 2x256]   (a quicker partial run)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from devtools.gunicorn import GunicornProcess
from devtools.performances import typical_request
from devtools.random_weights import write_random_artifact
from robojam_format.layout import REPO_ROOT, SHIPPED_WEIGHTS

CLIENTS = (1, 4, 16, 64)
ROUNDS = 4  # each level's measured seconds are split into this many rounds, alternating the settings
SERVER_CORE, CLIENT_CORE = 0, 1
RANDOM_NOTE = {"note": "random weights for make bench-load"}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tuned(max_batch: int) -> dict[str, str]:
    """bench-load's settings: one worker at `max_batch`, no access log, no metrics files."""
    return {
        "ROBOJAM_WORKERS": "1",
        "ROBOJAM_MAX_BATCH": str(max_batch),
        "ROBOJAM_ACCESS_LOG": os.devnull,
        "PROMETHEUS_MULTIPROC_DIR": "",
    }


def start_server(
    weights: Path,
    max_batch: int,
    log: Path,
    settings: dict[str, str] | None = None,
    *,
    root: Path = REPO_ROOT,
    cmd: Sequence[str] | None = None,
) -> GunicornProcess:
    """gunicorn with the service's own config, pinned to SERVER_CORE, started: one worker at `max_batch`
    (bench-load), or the service's defaults (`settings={}`: what the image runs, as bench-capacity measures it).
    `root` is the checkout to serve (bench-overhead serves an older commit's beside this one), `cmd` another
    gunicorn command line run there."""
    env = {"ROBOJAM_WEIGHTS": str(weights), **(tuned(max_batch) if settings is None else settings)}
    server = GunicornProcess(log, env=env, cmd=cmd, prefix=("taskset", "-c", str(SERVER_CORE)), cwd=root)
    if "ROBOJAM_WORKERS" not in env:
        server.env.pop("ROBOJAM_WORKERS", None)  # not GunicornProcess's 2: the service picks (one per core it has)
    return server.start()


def load(port: int, clients: int, seconds: float, perf: str) -> dict:
    """Closed-loop clients for `seconds`: the raw latencies of served requests and of /healthz probes, the counts of
    served, 503 and failed requests, and the wall time (`summarise` turns one or more of these into a row)."""
    latencies: list[float] = []
    counts = {"ok": 0, "shed": 0, "failed": 0}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        seed = index * 1_000_000
        while time.monotonic() < stop_at:
            seed += 1
            body = json.dumps({"perf": perf, "seed": seed})
            start = time.perf_counter()
            try:
                conn.request("POST", "/api/predict", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                status = response.status
            except OSError:
                status = None
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            elapsed = time.perf_counter() - start
            with lock:
                if status == 200:
                    counts["ok"] += 1
                    latencies.append(elapsed)
                elif status == 503:
                    counts["shed"] += 1
                else:
                    counts["failed"] += 1
            if status == 503:  # a well-behaved client waits as told (the app does not retry at all)
                time.sleep(float(response.headers.get("Retry-After", "1")))
        conn.close()

    probes: list[float] = []

    def probe() -> None:  # a liveness probe every 100 ms, as a kubelet would (more often)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            try:
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                probes.append(time.perf_counter() - start)
            except OSError:
                probes.append(float("inf"))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            time.sleep(0.1)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)] + [threading.Thread(target=probe)]
    begin = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"clients": clients, "wall": time.monotonic() - begin, "latencies": latencies, "probes": probes, **counts}


def summarise(parts: list[dict]) -> dict:
    """One table row from the rounds of one client level and setting."""
    wall = sum(part["wall"] for part in parts)
    counts = {key: sum(part[key] for part in parts) for key in ("ok", "shed", "failed")}
    latencies = [value for part in parts for value in part["latencies"]]
    probes = [value for part in parts for value in part["probes"]]
    total = sum(counts.values())
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    probe_ms = np.array(probes) * 1000 if probes else np.array([np.nan])
    return {
        "clients": parts[0]["clients"],
        "seconds": round(wall, 2),
        "served": counts["ok"],
        "req_per_s": round(counts["ok"] / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "shed_share": round(counts["shed"] / total, 3) if total else 0.0,
        "failed": counts["failed"],
        "healthz_p50_ms": round(float(np.percentile(probe_ms, 50)), 1),
        "healthz_max_ms": round(float(probe_ms.max()), 1),
    }


def run_model(
    weights: Path, label: str, settings: tuple[int, ...], seconds: float, perf: str, tmp: Path, clients: tuple[int, ...]
) -> list:
    """One server per setting, all pinned to the same core (an idle one costs nothing); each client level is
    measured in ROUNDS short rounds that alternate the settings, so a change in the machine's speed or other load
    hits them alike."""
    servers = []
    try:
        for max_batch in settings:
            servers.append(start_server(weights, max_batch, tmp / f"{label}-{max_batch}.log"))
            servers[-1].wait_ready(timeout=120)
        runs = [{"max_batch": m, "rss_mb_before": round(rss_mb(s.workers()[0]), 1), "results": []}
                for m, s in zip(settings, servers, strict=True)]  # fmt: skip
        for level in clients:
            parts: list[list[dict]] = [[] for _ in servers]
            for server in servers:
                load(server.port, level, 1.0, perf)  # settle
            for _ in range(ROUNDS):  # settings alternate in short rounds, so a drift in machine speed hits all alike
                for server, mine in zip(servers, parts, strict=True):
                    mine.append(load(server.port, level, seconds / ROUNDS, perf))
            for run, mine in zip(runs, parts, strict=True):
                row = summarise(mine)
                print(f"  {label} max_batch={run['max_batch']} clients={level}: {row}", flush=True)
                run["results"].append(row)
        for server, run in zip(servers, runs, strict=True):
            run["rss_mb_after"] = round(rss_mb(server.workers()[0]), 1)
        return runs
    finally:
        for server in servers:
            server.stop()


def ratios(off: dict, on: dict) -> dict:
    """Batching on against off as ratios of the same run (those whose client level was measured)."""
    off_at, on_at = {r["clients"]: r for r in off["results"]}, {r["clients"]: r for r in on["results"]}
    found = {}
    if 16 in on_at:
        found["req_per_s_at_16"] = round(on_at[16]["req_per_s"] / off_at[16]["req_per_s"], 2)
        found["p99_at_16_on_below_off"] = on_at[16]["p99_ms"] < off_at[16]["p99_ms"]
    if 1 in on_at:
        found["p50_at_1"] = round(on_at[1]["p50_ms"] / off_at[1]["p50_ms"], 3)
    if 64 in on_at:
        found["served_p99_ms_at_64"] = on_at[64]["p99_ms"]
        found["shed_share_at_64"] = on_at[64]["shed_share"]
    return found


def markdown(report: dict) -> str:
    """The results table (benchmarks/README.md): one row per model, setting and client count."""
    lines = [
        "| weights | batching | clients | req/s | p50 ms | p99 ms | 503 share | /healthz p50 / max ms "
        "| worker RSS MB before / after |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, model in report["models"].items():
        for name, setting in (("off", model["off"]), ("on", model["on"])):
            rss = f"{setting['rss_mb_before']} / {setting['rss_mb_after']}"
            for row in setting["results"]:
                lines.append(
                    f"| {label} | {name} (max batch {setting['max_batch']}) | {row['clients']} | {row['req_per_s']} "
                    f"| {row['p50_ms']} | {row['p99_ms']} | {row['shed_share']:.1%} "
                    f"| {row['healthz_p50_ms']} / {row['healthz_max_ms']} | {rss} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per client level")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "load.json")
    parser.add_argument("--table", type=Path, help="print the markdown table of a results file and exit")
    parser.add_argument("--clients", default=",".join(map(str, CLIENTS)), help="client levels, comma-separated")
    parser.add_argument("--models", default="2x256,2x512", help="which weights: 2x256 (shipped), 2x512 (random)")
    args = parser.parse_args(argv)
    levels = tuple(int(level) for level in args.clients.split(","))
    models = set(args.models.split(","))
    if args.table:
        print(markdown(json.loads(args.table.read_text())))
        return 0
    if shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("error: make bench-load needs taskset and at least 2 CPUs (server and clients apart).")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stopped: still stop the servers (finally)
    os.sched_setaffinity(0, {CLIENT_CORE})
    from service.settings import DEFAULT_MAX_BATCH

    perf = typical_request(seed=7)
    load_before = os.getloadavg()
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_before": load_before,
        "cpu": cpu_model(),
        "seconds_per_level": args.seconds,
        "request": "100 touches, 5 s",
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for label, weights in (
            ("2x256 shipped", lambda: SHIPPED_WEIGHTS),
            ("2x512 random", lambda: write_random_artifact(tmp / "w512.npz", units=512, training=RANDOM_NOTE)),
        ):
            if label.split()[0] not in models:
                continue
            off, on = run_model(weights(), label, (1, DEFAULT_MAX_BATCH), args.seconds, perf, tmp, levels)
            report["models"][label] = {"off": off, "on": on, "ratios": ratios(off, on)}
            print(f"{label}: {report['models'][label]['ratios']}", flush=True)
    report["loadavg_after"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(f"wrote {args.out}; load average before {load_before}, after {report['loadavg_after']}")
    return 0


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo: the records say which machine measured them."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
