"""A month unattended on the droplet, staged: the rollout's memory peak, log rotation, disk per request, a reboot.

- memory: both rollout slots run under one cgroup (v1 memory controller, cgroupfs) limited to the droplet's
  1 GB; during the blue/green rollout its resident memory (memory.stat total_rss, both containers and Numba's
  compile) is sampled every 50 ms and its max_usage_in_bytes (page cache included) read: the rollout's peak,
  reported against the limit and the droplet's swap file (this host has no swap to stage it);
- logs: the droplet's Docker log options (cloud-init's /etc/docker/daemon.json) become podman's k8s-file options,
  max-size scaled down so that a burst of requests rotates; the log's size after the burst, and the bytes one
  request adds (all the service writes to disk), give the month's growth;
- reboot: every slot is stopped as a shutdown stops it and started again as Docker does at boot (containers whose
  restart policy is `always` or `unless-stopped`), Caddy restarted with the Caddyfile as the rollout left it; the
  serving slot must answer through Caddy again.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import requests
import yaml

from staging import client
from staging.context import Context
from staging.errors import StagingError

DROPLET_MEMORY = 1024**3  # s-1vcpu-1gb
CGROUP_ROOT = Path("/sys/fs/cgroup/memory")
DAEMON_JSON = "/etc/docker/daemon.json"
STAGED_LOG_MAX = 64 * 1024  # the staged max-size: small enough for a burst to rotate it
BURST = 600  # requests in the burst
BOOT_POLICIES = ("always", "unless-stopped")  # what dockerd restarts at boot
MONTH_RATE = 1.0  # requests per second the month's log growth is stated for (it scales linearly)


@contextlib.contextmanager
def memory_cgroup(ctx: Context, name: str = "robojam_staging_droplet"):
    """A memory cgroup limited to the droplet's RAM, removed afterwards; yields its path (None without v1)."""
    if not (CGROUP_ROOT / "memory.max_usage_in_bytes").is_file():
        ctx.log("no cgroup v1 memory controller: the rollout's memory peak is not measured")
        yield None
        return
    path = CGROUP_ROOT / name
    path.mkdir(exist_ok=True)
    try:
        (path / "memory.limit_in_bytes").write_text(str(DROPLET_MEMORY))
        yield path
    finally:  # podman made the same parent in every controller (cgroupfs): remove them all
        for parent in [path, *(p for p in CGROUP_ROOT.parent.glob(f"*/{name}") if p != path)]:
            remove_cgroup(parent)


def remove_cgroup(path: Path) -> None:
    """Remove a cgroup and what podman left under it (conmon's), deepest first, once their tasks are gone."""
    for directory in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [path]:
        for _ in range(50):
            with contextlib.suppress(OSError):
                directory.rmdir()
                break
            time.sleep(0.1)


def _rss(cgroup: Path) -> int:
    for line in (cgroup / "memory.stat").read_text().splitlines():
        name, value = line.split()
        if name == "total_rss":
            return int(value)
    return 0


@contextlib.contextmanager
def rss_peak(cgroup: Path | None):
    """Sample the cgroup's resident memory while the block runs; yields a list that ends holding the peak."""
    found = [0]
    if cgroup is None:
        yield found
        return
    (cgroup / "memory.max_usage_in_bytes").write_text("0")
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            found[0] = max(found[0], _rss(cgroup))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield found
    finally:
        done.set()
        sampler.join(timeout=5)


def swap_bytes(user_data: str) -> int:
    """The droplet's swap file size, from its cloud-config (0 without one)."""
    swap = (yaml.safe_load(user_data) or {}).get("swap") or {}
    return int(swap.get("size") or 0)


def peak(cgroup: Path | None, rss: int, swap: int) -> dict:
    """The rollout's peak against the droplet's memory, and whether it ever hit the limit."""
    if cgroup is None:
        return {}
    used = int((cgroup / "memory.max_usage_in_bytes").read_text())
    failcnt = int((cgroup / "memory.failcnt").read_text())
    return {
        "rollout_peak_rss_mib": round(rss / 1024**2),
        "rollout_peak_usage_mib": round(used / 1024**2),
        "droplet_memory_mib": DROPLET_MEMORY // 1024**2,
        "swap_mib": swap // 1024**2,
        "memory_limit_hits": failcnt,
    }


def log_run_args(daemon_json: str | None) -> tuple[str, dict]:
    """podman `run` options for the droplet's Docker log options; and the droplet's options as read."""
    if not daemon_json:
        raise StagingError("the droplet's user-data writes no /etc/docker/daemon.json: container logs never rotate.")
    options = json.loads(daemon_json)
    opts = options.get("log-opts") or {}
    if options.get("log-driver") != "json-file" or "max-size" not in opts or "max-file" not in opts:
        raise StagingError(f"the droplet's Docker log options rotate nothing: {options}")
    return f"--log-driver k8s-file --log-opt max-size={STAGED_LOG_MAX}", opts


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(text[:-1]) * units[text[-1].lower()] if text[-1].lower() in units else int(text)


def log_burst(ctx: Context, container: str, url: str, droplet_opts: dict, month_requests: int) -> dict:
    """Bytes one request adds to the container's log, and the log's size after a burst (it must stay bounded)."""
    log = Path(ctx.containers.podman("inspect", "--format", "{{.HostConfig.LogConfig.Path}}", container).stdout.strip())
    before = log.stat().st_size
    for _ in range(20):
        requests.get(f"{url}/", timeout=10)
    per_request = (log.stat().st_size - before) / 20 if log.stat().st_size > before else 0.0
    for _ in range(BURST):
        requests.get(f"{url}/", timeout=10)
    after = log.stat().st_size
    files = sorted(p.name for p in log.parent.iterdir() if p.name.startswith(log.name))
    if per_request <= 0:
        raise StagingError(f"{container}'s log did not grow with requests: nothing to measure ({log}).")
    if after > STAGED_LOG_MAX + 4096:
        raise StagingError(f"{container}'s log is {after} bytes after {BURST} requests: max-size did not rotate it.")
    cap = _size(droplet_opts["max-size"]) * int(droplet_opts["max-file"])
    return {
        "log_bytes_per_request": round(per_request),
        "log_bytes_after_burst": after,
        "log_files_after_burst": len(files),
        "staged_log_max_bytes": STAGED_LOG_MAX,
        "droplet_log_cap_mib": cap // 1024**2,
        "month_log_mib_unrotated": round(per_request * month_requests / 1024**2),
    }


def simulated_reboot(ctx: Context, names: list[str], stop_timeout: float, restart_caddy, ready_url: str) -> dict:
    """Stop every slot as a shutdown does, start what Docker starts at boot, restart Caddy; time to ready."""
    policies = {}
    for name in names:
        found = ctx.containers.podman("inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}", name, check=False)
        if found.returncode == 0:
            policies[name] = found.stdout.strip()
            ctx.containers.podman("stop", "--time", str(int(stop_timeout)), name, timeout=stop_timeout + 30)
    if not policies:
        raise StagingError("no rollout slot existed to reboot.")
    started = time.monotonic()
    for name, policy in policies.items():
        if policy in BOOT_POLICIES:
            ctx.containers.podman("start", name)
    restart_caddy()
    try:
        back = client.wait_for(ready_url, timeout=120)
    except StagingError as exc:
        raise StagingError(f"after a simulated reboot the serving slot did not answer ({policies}): {exc}") from exc
    ctx.log(f"simulated reboot: restart policies {policies}; ready through Caddy after {back:.1f} s")
    return {
        "reboot_restart_policies": sorted(set(policies.values())),
        "reboot_ready_s": round(time.monotonic() - started, 1),
    }


def month_requests(per_second: float) -> int:
    """Requests in 30 days at a sustained rate."""
    return int(per_second * 30 * 24 * 3600)


def cgroup_parent_args(cgroup: Path | None) -> str:
    return f"--cgroup-parent /{cgroup.name}" if cgroup is not None else ""


def summary(memory: dict, logs: dict, reboot: dict) -> str:
    """One sentence for the staging table."""
    if memory:
        held = (
            f"rollout peak {memory['rollout_peak_rss_mib']} MiB resident ({memory['rollout_peak_usage_mib']} MiB "
            f"with page cache) of {memory['droplet_memory_mib']} MiB, {memory['memory_limit_hits']} limit hits "
            f"(droplet: + {memory['swap_mib']} MiB swap)"
        )
    else:
        held = "rollout memory not measured (no cgroup v1 memory controller)"
    return (
        f"{held}; logs {logs['log_bytes_per_request']} B/request, {logs['log_bytes_after_burst']} B in "
        f"{logs['log_files_after_burst']} file(s) after {BURST} requests (staged max-size {STAGED_LOG_MAX} B; "
        f"droplet cap {logs['droplet_log_cap_mib']} MiB per container, {logs['month_log_mib_unrotated']} MiB a "
        f"month unrotated at {MONTH_RATE:g}/s); after a simulated reboot ready through Caddy in "
        f"{reboot['reboot_ready_s']} s"
    )
