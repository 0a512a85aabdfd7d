"""`make bench-overhead`: CPU µs per request spent outside inference, by stage, and req/s over HTTP on one core.

Three measurements of the typical request (100 touches in, 5 s asked, 95 touches out: `benchmarks/overhead_stub.py`),
each for this checkout and, with `--base DIR`, another checkout of the repository (an older commit: `git worktree
add /tmp/overhead-base <commit>`), in one run with rounds that alternate the two, so a change in the machine's speed
or load hits both alike:

1. stages, in process (`benchmarks/overhead_stages.py`, one child process per checkout, pinned to CLIENT_CORE): JSON
   body, validation, CSV parse, admission, batcher hand-off, CSV reply, metrics and the Flask/werkzeug remainder,
   with the inference replaced by a fixed reply (`overhead_stub.ReplayEngine`); the CPU of one real inference is
   reported beside them for scale;
2. over loopback: gunicorn with the service's own config (one worker, the access log written to /dev/null, as
   `make bench-load`) serving that stub app, pinned to SERVER_CORE; the worker's CPU time (/proc) per request served
   to 1 and to 16 closed-loop clients (`benchmarks.load.load`, its /healthz probe every 100 ms included);
3. req/s over HTTP with the real engine (shipped weights, batching on, one worker on one core) at 16 and 64 clients,
   as `make bench-load` measures them.

Medians over the rounds, with the lowest and highest round. Raw results: benchmarks/overhead.json; the table is in
benchmarks/README.md (`python -m benchmarks.results`).

    python -m benchmarks.overhead [--base /tmp/overhead-base] [--rounds 10] [--seconds 2] [--out FILE]
    python -m benchmarks.overhead --table benchmarks/overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.load import CLIENT_CORE, cpu_model, load, start_server
from benchmarks.overhead_stub import typical_perf
from devtools.gunicorn import VENV_BIN
from robojam_format.layout import REPO_ROOT, SHIPPED_WEIGHTS

HERE = Path(__file__).resolve().parent
STUB_COMMAND = (
    str(VENV_BIN / "gunicorn"),
    "-c",
    "service/gunicorn_conf.py",
    "--pythonpath",
    str(HERE),
    "overhead_stub:create_app()",
)
LOOPBACK_CLIENTS, LOAD_CLIENTS = (1, 16), (16, 64)
# Table rows: (key, label). The first block is derived from the stage timings (see `stage_rows`).
ROWS = (
    ("json", "JSON body: read and decoded (`predict.read_fields`)"),
    ("validation", "validation of the fields (`PredictRequest.model_validate`)"),
    ("csv", "CSV parsed and cleaned (`performance.parse_csv`, `clean`)"),
    ("admission", "admission (`request_cost`, `Admission`)"),
    ("handoff", "batcher hand-off (`Batcher.arriving`, `generate`)"),
    ("reply", "reply CSV (`performance.format_csv`)"),
    ("metrics", "metrics (request hooks, queue gauges, batch size)"),
    ("flask", "HTTP framework: Flask/werkzeug, or the predict lane (`service/predict_lane.py`) where it has one"),
    ("request", "**in process, whole request**"),
    ("gunicorn", "gunicorn worker and sockets (loopback, 1 client, minus in process)"),
    ("loopback_1", "**over loopback, 1 client** (the worker's CPU per request)"),
    ("loopback_16", "over loopback, 16 clients"),
)


def stage_rows(found: dict[str, float]) -> dict[str, float]:
    """One round of `overhead_stages` as table rows: the stages by name, the rest derived by subtraction."""
    rows = {"json": found["fields"] - found["context"]}
    rows.update({key: found[key] for key in ("validation", "csv", "admission", "handoff", "reply", "metrics")})
    rows["flask"] = found["request"] - sum(rows.values())  # the request context is in this remainder
    rows["request"] = found["request"]
    return rows


def spread(values: list[float]) -> dict[str, float]:
    """Median, lowest and highest of the rounds, rounded for the record."""
    return {
        "median": round(float(np.median(values)), 1),
        "min": round(float(min(values)), 1),
        "max": round(float(max(values)), 1),
    }


def describe_tree(root: Path) -> str:
    """The checkout's commit, marked when its files differ from it."""
    found = subprocess.run(
        ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=7"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() or "unknown"


class StageChild:
    """`overhead_stages.py` running against one checkout, answering a round per request."""

    def __init__(self, root: Path, metrics_dir: Path):
        env = {**os.environ, "PYTHONPATH": str(root), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        env.update({name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(CLIENT_CORE), sys.executable, str(HERE / "overhead_stages.py")],
            cwd=root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str) -> dict[str, float]:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"overhead_stages exited with {self.proc.wait()}")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def measure_stages(trees: dict[str, Path], rounds: int, tmp: Path) -> tuple[dict, float]:
    """Per checkout and row, the spread over rounds (alternating checkouts); and this checkout's inference CPU µs."""
    children = {}
    try:
        for name, root in trees.items():
            children[name] = StageChild(root, Path(tempfile.mkdtemp(dir=tmp)))
        rows: dict[str, list[dict]] = {name: [] for name in trees}
        for _ in range(rounds):
            for name, child in children.items():
                rows[name].append(stage_rows(child.ask("round")))
        inference = children["this"].ask("inference")["inference"]
    finally:
        for child in children.values():
            child.close()
    return {name: {key: spread([r[key] for r in found]) for key in found[0]} for name, found in rows.items()}, inference


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alternate(servers: dict, levels: tuple[int, ...], rounds: int, measure, settle: float, perf: str) -> dict:
    """Per server name and client level, `measure(server, clients)` of each round; the servers take turns in every
    round, and each level starts with `settle` seconds of load on each. The servers are stopped at the end."""
    try:
        for server in servers.values():
            server.wait_ready(timeout=120)
        found: dict[str, dict[str, list]] = {name: {} for name in servers}
        for clients in levels:
            for server in servers.values():
                load(server.port, clients, settle, perf)
            for _ in range(rounds):
                for name, server in servers.items():
                    found[name].setdefault(str(clients), []).append(measure(server, clients))
        return found
    finally:
        for server in servers.values():
            server.stop()


def measure_loopback(trees: dict[str, Path], rounds: int, seconds: float, perf: str, tmp: Path) -> dict:
    """Per checkout and client level, the stub server's worker CPU µs per request served (spread over rounds)."""

    def worker_cpu_us(server, clients: int) -> float:
        worker = server.workers()[0]
        before = cpu_seconds(worker)
        run = load(server.port, clients, seconds, perf)
        return (cpu_seconds(worker) - before) / (run["ok"] + len(run["probes"])) * 1e6

    servers = {}
    for name, root in trees.items():
        servers[name] = start_server(SHIPPED_WEIGHTS, 32, tmp / f"stub-{name}.log", root=root, cmd=STUB_COMMAND)
    found = alternate(servers, LOOPBACK_CLIENTS, rounds, worker_cpu_us, 0.5, perf)
    return {name: {level: spread(values) for level, values in levels.items()} for name, levels in found.items()}


def measure_load(trees: dict[str, Path], rounds: int, seconds: float, perf: str, tmp: Path) -> dict:
    """Per checkout and client level, req/s with the real engine (spread over rounds), p50/p99 and the 503 share."""
    servers = {
        name: start_server(SHIPPED_WEIGHTS, 32, tmp / f"load-{name}.log", root=root) for name, root in trees.items()
    }
    measure = lambda server, clients: load(server.port, clients, seconds, perf)  # noqa: E731
    found = alternate(servers, LOAD_CLIENTS, rounds, measure, 1.0, perf)
    return {name: {level: load_row(parts) for level, parts in levels.items()} for name, levels in found.items()}


def load_row(parts: list[dict]) -> dict:
    """req/s over the rounds (median, lowest, highest round), and the served requests' p50/p99 and 503 share."""
    ms = np.array([value for part in parts for value in part["latencies"]] or [np.nan]) * 1000
    total = sum(part["ok"] + part["shed"] + part["failed"] for part in parts)
    return {
        "req_per_s": spread([part["ok"] / part["wall"] for part in parts]),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "shed_share": round(sum(part["shed"] for part in parts) / total, 3) if total else 0.0,
        "failed": sum(part["failed"] for part in parts),
    }


def per_request(report: dict, name: str) -> dict[str, dict[str, float]]:
    """All table rows of one checkout: the stages, then the loopback rows (gunicorn's share by subtraction)."""
    rows = dict(report["stages"][name])
    loopback = report["loopback"][name]
    rows["loopback_1"], rows["loopback_16"] = loopback["1"], loopback["16"]
    rows["gunicorn"] = {"median": round(loopback["1"]["median"] - rows["request"]["median"], 1)}
    return rows


def cell(value: dict[str, float]) -> str:
    shown = f"{value['median']:,.0f}"
    return f"{shown} ({value['min']:,.0f}–{value['max']:,.0f})" if "min" in value else shown


def markdown(report: dict) -> str:
    """The record's tables: CPU µs per request by stage, and req/s at 16 and 64 clients, per checkout."""
    names = list(report["trees"])
    heads = [f"{name} ({report['trees'][name]})" for name in names]
    rows = {name: per_request(report, name) for name in names}
    ratio = "base" in names and "this" in names
    lines = [
        f"`make bench-overhead` ({report['request']}; {report['cpu']}; server on one core; medians over "
        f"{report['rounds']} alternating rounds, lowest–highest round in brackets):",
        "",
        "| CPU µs per request | " + " | ".join(heads) + (" | this / base |" if ratio else " |"),
        "| --- |" + " ---: |" * (len(names) + ratio),
    ]
    for key, label in ROWS:
        values = [rows[name][key] for name in names]
        line = f"| {label} | " + " | ".join(cell(value) for value in values) + " |"
        if ratio:
            line += f" {values[1]['median'] / values[0]['median']:.2f}× |" if values[0]["median"] > 0 else " — |"
        lines.append(line)
    lines += [
        "",
        f"One inference of the same request costs {report['inference_us']:,.0f} CPU µs (shipped 2×256 weights).",
        "",
        "| real engine, one core | " + " | ".join(heads) + (" | this / base |" if ratio else " |"),
        "| --- |" + " ---: |" * (len(names) + ratio),
    ]
    for level in map(str, LOAD_CLIENTS):
        found = [report["load"][name][level] for name in names]
        line = f"| req/s at {level} clients | " + " | ".join(cell(row["req_per_s"]) for row in found) + " |"
        if ratio:
            line += f" {found[1]['req_per_s']['median'] / found[0]['req_per_s']['median']:.2f}× |"
        lines.append(line)
        lines.append(
            f"| p50 / p99 ms, 503 share at {level} clients | "
            + " | ".join(f"{row['p50_ms']} / {row['p99_ms']}, {row['shed_share']:.1%}" for row in found)
            + (" | |" if ratio else " |")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="another checkout to measure beside this one (an older commit)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per measurement")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per round over HTTP")
    parser.add_argument("--out", type=Path, default=HERE / "overhead.json")
    parser.add_argument("--table", type=Path, help="print the markdown tables of a results file and exit")
    parser.add_argument("--quick", action="store_true", help="stages and loopback only, printed, nothing written")
    args = parser.parse_args(argv)
    if args.table:
        print(markdown(json.loads(args.table.read_text())))
        return 0
    if shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("error: make bench-overhead needs taskset and at least 2 CPUs (server and clients apart).")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stopped: still stop the servers and children
    os.sched_setaffinity(0, {CLIENT_CORE})
    trees = {"base": args.base.resolve()} if args.base else {}
    trees["this"] = REPO_ROOT
    perf = typical_perf()
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_before": os.getloadavg(),
        "cpu": cpu_model(),
        "request": "100 touches in, 5 s asked, 95 touches out",
        "rounds": args.rounds,
        "seconds_per_round": args.seconds,
        "trees": {name: describe_tree(root) for name, root in trees.items()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        report["stages"], report["inference_us"] = measure_stages(trees, args.rounds, tmp)
        print(json.dumps(report["stages"]), flush=True)
        report["loopback"] = measure_loopback(trees, args.rounds, args.seconds, perf, tmp)
        print(json.dumps(report["loopback"]), flush=True)
        if args.quick:
            return 0
        report["load"] = measure_load(trees, args.rounds, args.seconds, perf, tmp)
    report["loadavg_after"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
