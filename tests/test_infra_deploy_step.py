"""The droplet's deploy step installs the Caddyfile itself (issue 19): run its proxy fragment against stubs.

The fragment of the rendered deploy script between "# The proxy's config" and the removal of its temporary file
runs with bash, its Caddyfile path pointed into tmp_path, `caddy` and `systemctl` stubs that log their calls.
Checked: the first run installs and reloads; a rerun with the same config reloads nothing; a changed config (a
domain) is installed and reloaded with the serving slot still first, as the rollout last ordered it.
"""

from __future__ import annotations

import os
import subprocess

from infra.components.droplet import PROXY_CONFIG, deploy_script, proxy_config
from infra.mock_plan import config_strings, stack_config
from infra.stack_config import parse

STUB = '#!/bin/sh\necho "$(basename "$0") $*" >>"$STUB_LOG"\n'


def settings(overrides: dict | None = None):
    name, config, _ = stack_config("dev", overrides)
    return parse(config_strings(config), stack=name).settings


def fragment(caddyfile: str, target) -> str:
    script = deploy_script("registry.example/robojam@sha256:1", "", caddyfile, "ssh-ed25519 AAAA robojam\n")
    start = script.index("# The proxy's config")
    end = script.index('rm -f "$proxy_new"\n') + len('rm -f "$proxy_new"\n')
    return "set -euo pipefail\n" + script[start:end].replace(PROXY_CONFIG, str(target))


def run(tmp_path, caddyfile: str) -> list[str]:
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    for tool in ("caddy", "systemctl"):
        (stubs / tool).write_text(STUB)
        (stubs / tool).chmod(0o755)
    log = tmp_path / "calls.log"
    log.write_text("")
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "STUB_LOG": str(log), "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        ["bash", "-c", fragment(caddyfile, tmp_path / "Caddyfile")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines()


def test_the_caddyfile_is_installed_reloaded_on_change_and_keeps_the_serving_slot_first(tmp_path):
    installed = tmp_path / "Caddyfile"
    plain = proxy_config(settings())
    calls = run(tmp_path, plain)
    assert installed.read_text() == plain
    assert calls[0].startswith("caddy validate") and calls[-1] == "systemctl reload-or-restart caddy"
    assert run(tmp_path, plain) == []  # unchanged: nothing validated, nothing reloaded

    # the rollout switched to the second slot; then the domain is set
    installed.write_text(plain.replace("127.0.0.1:5001 127.0.0.1:5002 {", "127.0.0.1:5002 127.0.0.1:5001 {"))
    with_domain = proxy_config(settings({"robojam:domain": "jam.example.org"}))
    calls = run(tmp_path, with_domain)
    text = installed.read_text()
    assert "\njam.example.org {" in text and "reverse_proxy 127.0.0.1:5002 127.0.0.1:5001 {" in text
    assert text == with_domain.replace("127.0.0.1:5001 127.0.0.1:5002 {", "127.0.0.1:5002 127.0.0.1:5001 {")
    assert calls[-1] == "systemctl reload-or-restart caddy"
