"""A TCP port that is free on 127.0.0.1 right now (servers, proxies and containers under test bind to it)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """Ask the kernel for an unused loopback port; another process may take it before the caller binds it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
