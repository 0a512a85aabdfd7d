"""Debian's caddy with the droplet's rendered Caddyfile, validated, then run as staging.adapt changes it.

The Caddyfile is copied under the build folder with its loopback upstreams pointed at this machine's slot ports
(adapt.caddyfile); that copy is the rollout's PROXY_CONFIG. Caddy runs the adapted JSON with its admin endpoint
on a free loopback port, so `python -m staging.caddy reload STATE` (the rollout's PROXY_RELOAD) re-adapts the
copy, with the reverse_proxy line as the rollout reordered it, and loads it gracefully.
Home, data and certificates (the internal CA) live under the build folder too.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from devtools.ports import free_port
from staging import adapt
from staging.context import Context
from staging.errors import StagingError


@dataclass(frozen=True)
class Proxy:
    """One Caddy instance's files and ports (saved as JSON so the reload command can find them)."""

    name: str
    folder: str
    caddyfile: str  # staging's copy of the rendered Caddyfile, upstreams on this machine's slot ports
    http_port: int
    https_port: int
    admin_port: int

    @property
    def state(self) -> Path:
        return Path(self.folder) / f"{self.name}.state.json"

    @property
    def reload_command(self) -> str:
        return f"{sys.executable} -m staging.caddy reload {self.state}"

    def environment(self) -> dict:
        home = Path(self.folder) / "home"
        home.mkdir(parents=True, exist_ok=True)
        return {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home), "XDG_CONFIG_HOME": str(home)}

    def caddy(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["caddy", *args], capture_output=True, text=True, timeout=60, env=self.environment())

    def rendered_json(self) -> dict:
        adapted = self.caddy("adapt", "--config", self.caddyfile, "--adapter", "caddyfile")
        if adapted.returncode != 0:
            raise StagingError(f"caddy adapt failed: {adapted.stderr.strip()[-300:]}")
        return json.loads(adapted.stdout)

    def config(self) -> dict:
        """The JSON Caddy runs: the rendered config changed as staging.adapt says."""
        return adapt.caddy_json(
            self.rendered_json(),
            http_port=self.http_port,
            https_port=self.https_port,
            admin_port=self.admin_port,
            storage=str(Path(self.folder) / "storage"),
        )


def prepare(ctx: Context, caddyfile: str, upstream, name: str) -> Proxy:
    """Copy the rendered Caddyfile into the build folder, its upstreams mapped by `upstream`, and validate it."""
    folder = ctx.path("caddy")
    path = folder / f"{name}.Caddyfile"
    path.write_text(adapt.caddyfile(caddyfile, upstream))
    proxy = Proxy(name, str(folder), str(path), free_port(), free_port(), free_port())
    proxy.state.write_text(json.dumps(asdict(proxy)))
    validated = proxy.caddy("validate", "--config", str(path), "--adapter", "caddyfile")
    ctx.log(validated.stdout + validated.stderr)
    if validated.returncode != 0:
        raise StagingError(f"caddy validate rejects the rendered Caddyfile: {validated.stderr.strip()[-300:]}")
    return proxy


@contextlib.contextmanager
def running(ctx: Context, proxy: Proxy):
    path = Path(proxy.folder) / f"{proxy.name}.json"
    path.write_text(json.dumps(proxy.config(), indent=2))
    with (ctx.path("logs") / f"caddy-{proxy.name}.log").open("a") as log:
        process = subprocess.Popen(
            ["caddy", "run", "--config", str(path)], stdout=log, stderr=log, env=proxy.environment()
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def reload(state: Path) -> int:
    """Re-adapt staging's Caddyfile copy (as the rollout reordered it) and load it into the running Caddy."""
    proxy = Proxy(**json.loads(state.read_text()))
    path = Path(proxy.folder) / f"{proxy.name}.json"
    path.write_text(json.dumps(proxy.config(), indent=2))
    done = proxy.caddy("reload", "--config", str(path), "--address", f"127.0.0.1:{proxy.admin_port}")
    if done.returncode != 0:
        print(f"staging.caddy: reload failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "reload":
        sys.exit("usage: python -m staging.caddy reload STATE.json")
    sys.exit(reload(Path(sys.argv[2])))
