"""The droplet's image rollout (infra's robojam-rollout script, fed over SSH by a pulumi-command step), run here.

From the recorded plan: the rollout script as the deploy step installs it (its heredoc) and the environment the
deploy step runs it with (its `export NAME=VALUE` lines and the call's own assignments). Here it runs with
DOCKER=podman, PUBLISH=0 (host networking), IMAGE = a local image, PULL=0, free loopback slot ports,
PROXY_CONFIG = staging's Caddyfile copy in the build folder and PROXY_RELOAD = a reload of staging's own Caddy
(the changes staging.adapt lists); the rest of its environment is the plan's.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
from dataclasses import dataclass

import yaml

from devtools.ports import free_port
from infra.tables import resource_types as types
from robojam_format.layout import REPO_ROOT
from staging.caddy import Proxy
from staging.context import Context
from staging.errors import StagingError

REMOTE_COMMAND = types.REMOTE_COMMAND
INSTALLED_AS = "/usr/local/sbin/robojam-rollout"
DROPPED_ENV = ("DOCKER_CONFIG",)  # the deploy's one-run registry login: nothing is pulled here


@dataclass(frozen=True)
class Rollout:
    script: str  # the rollout script, as installed on the droplet
    env: dict[str, str]  # the environment the deploy step runs it with

    @property
    def ports(self) -> list[int]:
        return [int(p) for p in self.env.get("PORTS", "5001 5002").split()]

    @property
    def name(self) -> str:
        return self.env.get("NAME", "robojam")

    @property
    def stop_timeout(self) -> float:
        return float(self.env.get("STOP_TIMEOUT", 40))


def write_files(user_data: str) -> dict[str, str]:
    """cloud-init's write_files as path -> content."""
    data = yaml.safe_load(user_data)
    if not isinstance(data, dict):
        raise StagingError("the droplet's user-data is not a cloud-config mapping.")
    return {entry["path"]: entry.get("content", "") for entry in data.get("write_files") or []}


def rollout_of(plan) -> Rollout | None:
    """The plan's rollout, or None when the program deploys the droplet another way."""
    commands = [r for r in plan.of_type(REMOTE_COMMAND) if INSTALLED_AS in (r.inputs.get("stdin") or "")]
    if not commands:
        return None
    deploy = commands[0].inputs["stdin"]
    # Every here-document (the SSH keys, the Caddyfile, the rollout script); the script is the one written to
    # INSTALLED_AS, and none of them is read for the environment.
    heredocs = list(re.finditer(r"^(.*)<<'(\w+)'\n(.*?)^\2$", deploy, re.DOTALL | re.MULTILINE))
    scripts = [h.group(3) for h in heredocs if INSTALLED_AS in h.group(1)]
    if not scripts:
        raise StagingError("the deploy step does not install the rollout script from a heredoc.")
    for heredoc in heredocs:
        deploy = deploy.replace(heredoc.group(0), "")
    lines = deploy.replace("\\\n", " ").splitlines()
    calls = [env for env in map(_invocation, lines) if env is not None]
    if len(calls) != 1:
        raise StagingError(f"the deploy step runs {INSTALLED_AS} {len(calls)} times; expected once.")
    exported = {}
    for line in lines:
        exported.update(_exported(line))
    env = {key: value for key, value in {**exported, **calls[0]}.items() if key not in DROPPED_ENV}
    return Rollout(script=scripts[0], env=env)


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return []


def _invocation(line: str) -> dict[str, str] | None:
    """The environment of a line `NAME=VALUE ... /usr/local/sbin/robojam-rollout`; None for any other line."""
    words = _words(line)
    if not words or words[-1] != INSTALLED_AS or not all("=" in word for word in words[:-1]):
        return None
    return dict(word.split("=", 1) for word in words[:-1])


def _exported(line: str) -> dict[str, str]:
    """What a line `export NAME=VALUE ...` puts in the environment; {} for any other line."""
    words = _words(line)
    if not words or words[0] != "export" or not all("=" in word for word in words[1:]):
        return {}
    return dict(word.split("=", 1) for word in words[1:])


class RolloutRunner:
    """Runs the rollout script against podman, with private state, on free slot ports, behind `proxy`."""

    def __init__(self, ctx: Context, rollout: Rollout):
        self.ctx, self.rollout = ctx, rollout
        self.script = ctx.path("rollout") / "robojam-rollout"
        self.script.write_text(rollout.script)
        self.ports = [free_port() for _ in rollout.ports]
        self.log = ctx.path("logs") / "rollout.log"
        self.proxy: Proxy | None = None
        self.run_args = ""  # staging's own `run` options (a cgroup parent, log options), after the plan's

    def upstream(self, dial: str) -> str:
        """Caddy's upstream for one of the droplet's slot ports: the same slot's port here."""
        port = int(dial.rsplit(":", 1)[-1])
        if port in self.rollout.ports:
            return f"127.0.0.1:{self.ports[self.rollout.ports.index(port)]}"
        return dial

    def deploy(self, image: str, timeout: float = 300) -> str:
        """One run of the rollout script; its output. A non-zero exit raises StagingError."""
        env = {
            **self.ctx.containers.env,
            **self.rollout.env,
            "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "DOCKER": "podman",
            "PUBLISH": "0",
            "RUN_ARGS": f"{self.rollout.env.get('RUN_ARGS', '')} --health-interval disable {self.run_args}".strip(),
            "IMAGE": image,
            "PULL": "0",
            "HOST": "127.0.0.1",
            "PORTS": " ".join(map(str, self.ports)),
            "PROXY_CONFIG": "",  # never the droplet's /etc/caddy path
            "PROXY_RELOAD": "false",  # never the system's Caddy
        }
        if self.rollout.env.get("PROXY_CONFIG"):
            if self.proxy is None:
                raise StagingError("the rollout switches Caddy (PROXY_CONFIG) but staging runs no Caddy for it.")
            env["PROXY_CONFIG"] = self.proxy.caddyfile
            env["PROXY_RELOAD"] = self.proxy.reload_command
        done = subprocess.run(["bash", str(self.script)], env=env, capture_output=True, text=True, timeout=timeout)
        with self.log.open("a") as f:
            f.write(f"--- IMAGE={image} exit {done.returncode}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            raise StagingError(f"the rollout of {image} exited {done.returncode}: {done.stderr.strip()[-300:]}")
        return done.stdout

    def serving(self) -> tuple[str, int]:
        """(container, port) of the slot that serves now."""
        for slot, port in zip(("a", "b"), self.ports, strict=False):
            name = f"{self.rollout.name}-{slot}"
            state = self.ctx.containers.podman("inspect", "--format", "{{.State.Running}}", name, check=False)
            if state.stdout.strip() == "true":
                return name, port
        raise StagingError("no rollout slot is running.")

    def names(self) -> list[str]:
        return [f"{self.rollout.name}-{slot}" for slot in ("a", "b")]

    def remove_all(self) -> None:
        for slot in ("a", "b"):
            self.ctx.containers.podman("rm", "--force", "--time", "0", f"{self.rollout.name}-{slot}", check=False)


@contextlib.contextmanager
def slots(ctx: Context, rollout: Rollout):
    """A rollout runner whose slots are removed afterwards, whatever happened."""
    runner = RolloutRunner(ctx, rollout)
    runner.remove_all()
    try:
        yield runner
    finally:
        runner.remove_all()
