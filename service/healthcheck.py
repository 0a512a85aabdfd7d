"""Container HEALTHCHECK: GET /healthz on the address gunicorn binds, exit 0 if it answers 200, else 1.

The slim image has no curl; this uses the standard library and reads the same bind and TLS settings as the
gunicorn config (service.settings.listen), so the check keeps working when the port or scheme is changed by env.
"""

from __future__ import annotations

import ssl
import sys
import urllib.request

from service import settings

WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "[::]": "[::1]", "::": "[::1]"}


def url() -> str:
    """The /healthz URL for the first address gunicorn binds (wildcard hosts become loopback)."""
    listen = settings.listen()
    address = listen.addresses[0]
    if address.startswith("unix:"):
        raise ValueError("ROBOJAM_BIND is a unix socket; this check needs a TCP address.")
    host, _, port = address.rpartition(":")
    host = WILDCARDS.get(host, host)
    return f"{listen.scheme}://{host}:{port or '5000'}/healthz"


def main() -> int:
    try:
        target = url()
        # Our own loopback listener: its certificate names the public host, so it is not verified here.
        context = ssl._create_unverified_context() if target.startswith("https") else None
        with urllib.request.urlopen(target, timeout=3, context=context) as response:
            ok = response.status == 200
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
