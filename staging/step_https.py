"""Step 3: Caddy with the droplet's rendered Caddyfile (a stack with a domain) in front of the running container.

The Caddyfile as rendered must pass `caddy validate`. Then Caddy runs it, changed only as staging.adapt says
(internal CA instead of ACME, loopback ports), and curl, resolving the domain to 127.0.0.1 and trusting only that
CA, gets a MicroJam reply from /api/predict over TLS; the paths the Caddyfile keeps private (e.g. /metrics) answer
on the container but not through Caddy.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from infra.mock_plan import plan_stack
from staging import adapt, client
from staging.containers import foreground
from staging.context import Context, free_port
from staging.droplet_unit import write_files
from staging.engine import StagingError
from staging.step_droplet import DROPLET, unit_for

DOMAIN = "jam.example.org"
OVERRIDES = {"robojam:domain": DOMAIN, "robojam:acmeEmail": "ops@example.org"}
CADDYFILE = "/etc/caddy/Caddyfile"


def rendered_caddyfile() -> str:
    files = write_files(plan_stack("dev", OVERRIDES).one(DROPLET).inputs["userData"])
    if CADDYFILE not in files:
        raise StagingError(f"the droplet's user-data with a domain writes no {CADDYFILE}.")
    return files[CADDYFILE]


def caddy(ctx: Context, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    home = ctx.path("caddy", "home")
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home), "XDG_CONFIG_HOME": str(home)}
    return subprocess.run(["caddy", *args], capture_output=True, text=True, timeout=timeout, env=env)


def curl(*args: str) -> tuple[int, str]:
    """(HTTP status, body) of one curl call; status 0 when the request did not complete."""
    done = subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "30", "--write-out", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    body, _, code = done.stdout.rpartition("\n")
    if done.returncode != 0:
        return 0, done.stderr.strip()
    return int(code), body


def run(ctx: Context) -> tuple[str, dict]:
    folder = ctx.path("caddy")
    source = folder / "Caddyfile"
    source.write_text(rendered_caddyfile())
    validated = caddy(ctx, "validate", "--config", str(source), "--adapter", "caddyfile")
    ctx.log(validated.stdout + validated.stderr)
    if validated.returncode != 0:
        raise StagingError(f"caddy validate rejects the rendered Caddyfile: {validated.stderr.strip()[-300:]}")
    adapted = caddy(ctx, "adapt", "--config", str(source), "--adapter", "caddyfile")
    if adapted.returncode != 0:
        raise StagingError(f"caddy adapt failed: {adapted.stderr.strip()[-300:]}")
    rendered = json.loads(adapted.stdout)
    private = adapt.blocked_paths(rendered)

    unit = unit_for(overrides=OVERRIDES)
    app_port, https_port, http_port = free_port(), free_port(), free_port()
    config = adapt.caddy_json(
        rendered,
        http_port=http_port,
        https_port=https_port,
        upstream=lambda dial: f"127.0.0.1:{app_port}",
        storage=str(ctx.path("caddy", "storage")),
    )
    (folder / "caddy.json").write_text(json.dumps(config, indent=2))
    ctx.log(f"changes: {'; '.join(adapt.CHANGES['caddy'])}")
    name = (unit.run.values("--name") or ["robojam"])[-1]
    argv = adapt.droplet_run(unit.run, ctx.facts["image"], app_port)
    app = f"http://127.0.0.1:{app_port}"
    site = f"https://{DOMAIN}:{https_port}"
    resolve = ["--resolve", f"{DOMAIN}:{https_port}:127.0.0.1"]
    root_ca = ctx.build_dir / "caddy" / "storage" / "pki" / "authorities" / "local" / "root.crt"
    with foreground(ctx.engine, argv, name, ctx.path("logs") / "https-container.log"):
        client.wait_for(f"{app}/readyz", timeout=120)
        with (ctx.path("logs") / "caddy.log").open("a") as caddy_log:
            home = ctx.path("caddy", "home")
            env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home), "XDG_CONFIG_HOME": str(home)}
            proxy = subprocess.Popen(
                ["caddy", "run", "--config", str(folder / "caddy.json")], stdout=caddy_log, stderr=caddy_log, env=env
            )
        try:
            deadline = time.monotonic() + 30
            status, body = 0, ""
            while time.monotonic() < deadline:
                if proxy.poll() is not None:
                    raise StagingError(f"caddy exited {proxy.returncode}; see {caddy_log.name}")
                if root_ca.is_file():
                    status, body = curl(*resolve, "--cacert", str(root_ca), f"{site}/readyz")
                    if status == 200:
                        break
                time.sleep(0.3)
            if status != 200:
                raise StagingError(f"{site}/readyz through Caddy (TLS, internal CA) gave {status} {body[:200]}")
            perf = json.dumps({"perf": client.microjam_performance(), "seed": 1})
            status, body = curl(
                *resolve, "--cacert", str(root_ca), "-H", "Content-Type: application/json", "--data", perf,
                f"{site}/api/predict",
            )  # fmt: skip
            if status != 200 or not json.loads(body).get("response", "").startswith("time,x,y,z,moving\n"):
                raise StagingError(f"/api/predict over TLS through Caddy gave {status}: {body[:200]}")
            untrusted, _ = curl(*resolve, f"{site}/readyz")
            if untrusted != 0:
                raise StagingError("curl trusted Caddy's certificate without the internal CA: TLS is not checked.")
            for path in private:
                direct, _ = curl(f"{app}{path}")
                proxied, _ = curl(*resolve, "--cacert", str(root_ca), f"{site}{path}")
                if direct != 200 or proxied == 200:
                    raise StagingError(
                        f"{path}: {direct} on the container, {proxied} through Caddy (want 200, not 200)"
                    )
        finally:
            proxy.terminate()
            try:
                proxy.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proxy.kill()
                proxy.wait(timeout=5)
    detail = f"caddy validate ok; /api/predict over TLS (internal CA) via {DOMAIN}; "
    detail += f"not public through Caddy: {', '.join(private)}" if private else "the Caddyfile keeps no path private"
    return detail, {"private_paths": private, "validated": True}
