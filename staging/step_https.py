"""Step 4: Caddy with the droplet's rendered Caddyfile (a stack with a domain) in front of the running service.

The Caddyfile as rendered must pass `caddy validate`. Then Caddy runs it, changed only as staging.adapt says
(internal CA instead of ACME, loopback ports), and curl, resolving the domain to 127.0.0.1 and trusting only that
CA, gets a MicroJam reply from /api/predict over TLS; the paths the Caddyfile keeps private (e.g. /metrics) answer
on the container but not through Caddy.
"""

from __future__ import annotations

import json
import subprocess
import time

from devtools.performances import typical_request
from infra.tables.image_contract import READY_PATH
from staging import adapt, caddy
from staging.context import Context
from staging.droplet_rollout import rollout_of, slots
from staging.errors import StagingError
from staging.step_droplet import caddyfile_of, plan

DOMAIN = "jam.example.org"
OVERRIDES = {"robojam:domain": DOMAIN, "robojam:acmeEmail": "ops@example.org"}


def curl(*args: str) -> tuple[int, str]:
    """(HTTP status, body) of one curl call; status 0 when the request did not complete (e.g. TLS refused)."""
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
    recorded = plan(OVERRIDES)
    rollout = rollout_of(recorded)
    if rollout is None:
        raise StagingError("the plan with a domain has no droplet rollout to serve behind Caddy.")
    caddyfile = caddyfile_of(recorded, rollout)
    if caddyfile is None:
        raise StagingError("the droplet's user-data with a domain writes no Caddyfile.")
    root_ca = ctx.build_dir / "caddy" / "storage" / "pki" / "authorities" / "local" / "root.crt"
    with slots(ctx, rollout) as runner:
        runner.proxy = caddy.prepare(ctx, caddyfile, runner.upstream, "https")
        private = adapt.blocked_paths(runner.proxy.rendered_json())
        https_port = runner.proxy.https_port
        ctx.log(f"changes: {'; '.join(adapt.CHANGES['caddy'])}")
        site = f"https://{DOMAIN}:{https_port}"
        resolve = ["--resolve", f"{DOMAIN}:{https_port}:127.0.0.1"]
        with caddy.running(ctx, runner.proxy) as proxy:
            runner.deploy(ctx.facts["image"])
            _, port = runner.serving()
            app = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            status, body = 0, ""
            while time.monotonic() < deadline:
                if proxy.poll() is not None:
                    raise StagingError(f"caddy exited {proxy.returncode}; see logs/caddy-https.log")
                if root_ca.is_file():
                    status, body = curl(*resolve, "--cacert", str(root_ca), f"{site}{READY_PATH}")
                    if status == 200:
                        break
                time.sleep(0.3)
            if status != 200:
                raise StagingError(f"{site}{READY_PATH} through Caddy (TLS, internal CA) gave {status} {body[:200]}")
            perf = json.dumps({"perf": typical_request(seed=1), "seed": 1})
            status, body = curl(
                *resolve, "--cacert", str(root_ca), "-H", "Content-Type: application/json", "--data", perf,
                f"{site}/api/predict",
            )  # fmt: skip
            if status != 200 or not json.loads(body).get("response", "").startswith("time,x,y,z,moving\n"):
                raise StagingError(f"/api/predict over TLS through Caddy gave {status}: {body[:200]}")
            untrusted, _ = curl(*resolve, f"{site}{READY_PATH}")
            if untrusted != 0:
                raise StagingError("curl trusted Caddy's certificate without the internal CA: TLS is not checked.")
            for path in private:
                direct, _ = curl(f"{app}{path}")
                proxied, _ = curl(*resolve, "--cacert", str(root_ca), f"{site}{path}")
                if direct != 200 or proxied == 200:
                    raise StagingError(
                        f"{path}: {direct} on the container, {proxied} through Caddy (want 200, not 200)"
                    )
    detail = f"caddy validate ok; /api/predict over TLS (internal CA) via {DOMAIN}; "
    detail += f"not public through Caddy: {', '.join(private)}" if private else "the Caddyfile keeps no path private"
    return detail, {"private_paths": private, "validated": True}
