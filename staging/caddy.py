"""Debian's caddy with a rendered Caddyfile: validated as rendered, then run as staging.adapt changes it.

Its home, data and config (certificates, the internal CA) live under the build folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess

from staging import adapt
from staging.context import Context, free_port
from staging.engine import StagingError


def environment(ctx: Context) -> dict:
    home = ctx.path("caddy", "home")
    return {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home), "XDG_CONFIG_HOME": str(home)}


def adapted(ctx: Context, caddyfile: str, upstream, name: str) -> tuple[dict, dict, int, int]:
    """(rendered JSON, adapted JSON, http port, https port) for a rendered Caddyfile."""
    source = ctx.path("caddy") / f"{name}.Caddyfile"
    source.write_text(caddyfile)
    env = environment(ctx)
    validated = subprocess.run(
        ["caddy", "validate", "--config", str(source), "--adapter", "caddyfile"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    ctx.log(validated.stdout + validated.stderr)
    if validated.returncode != 0:
        raise StagingError(f"caddy validate rejects the rendered Caddyfile: {validated.stderr.strip()[-300:]}")
    adapted = subprocess.run(
        ["caddy", "adapt", "--config", str(source), "--adapter", "caddyfile"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    if adapted.returncode != 0:
        raise StagingError(f"caddy adapt failed: {adapted.stderr.strip()[-300:]}")
    rendered = json.loads(adapted.stdout)
    http_port, https_port = free_port(), free_port()
    config = adapt.caddy_json(
        rendered,
        http_port=http_port,
        https_port=https_port,
        upstream=upstream,
        storage=str(ctx.path("caddy", "storage")),
    )
    return rendered, config, http_port, https_port


@contextlib.contextmanager
def running(ctx: Context, config: dict, name: str):
    path = ctx.path("caddy") / f"{name}.json"
    path.write_text(json.dumps(config, indent=2))
    with (ctx.path("logs") / f"caddy-{name}.log").open("a") as log:
        proxy = subprocess.Popen(["caddy", "run", "--config", str(path)], stdout=log, stderr=log, env=environment(ctx))
    try:
        yield proxy
    finally:
        proxy.terminate()
        try:
            proxy.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait(timeout=5)
