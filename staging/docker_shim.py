"""The `DOCKER` the droplet's rollout script runs here: podman, with the changes staging.adapt lists for it.

`run`: `--publish HOST:PORT:CONTAINER_PORT` is dropped (host networking has no port mapping) and the service is
told to listen on HOST:PORT itself (ROBOJAM_BIND); `--health-interval disable` (no systemd timers here). Every
other command and flag goes to podman as it is.
"""

from __future__ import annotations

import os
import sys


def translate(argv: list[str]) -> list[str]:
    """podman's argv for one docker command line of the rollout script."""
    if not argv or argv[0] != "run":
        return ["podman", *argv]
    out, bind, i = ["podman", "run", "--health-interval", "disable"], None, 1
    while i < len(argv):
        arg = argv[i]
        if arg in ("--publish", "-p") and i + 1 < len(argv):
            host, port, _container = argv[i + 1].rsplit(":", 2) if argv[i + 1].count(":") >= 2 else ("", "", "")
            bind = f"{host or '127.0.0.1'}:{port}" if port else None
            i += 2
            continue
        out.append(arg)
        i += 1
    if bind:
        out = [f"ROBOJAM_BIND={bind}" if a.startswith("ROBOJAM_BIND=") else a for a in out]
        if f"ROBOJAM_BIND={bind}" not in out:
            out[4:4] = ["--env", f"ROBOJAM_BIND={bind}"]
    return out


def main() -> int:
    argv = translate(sys.argv[1:])
    os.execvp(argv[0], argv)
    return 127


if __name__ == "__main__":
    sys.exit(main())
