"""The buffering proxy in front of gunicorn on every serving target: Caddy, one Caddyfile template.

Why Caddy on both targets: gunicorn's gthread workers give each connection a thread that blocks while a slow
client dribbles headers or a body (issue 11: two such sockets took a 1-worker server offline); Caddy reads the
whole request first and only then opens a connection upstream. On the droplet it is the host's Caddy (HTTPS
with a domain, plain HTTP on :80 without); on GKE a sidecar in each pod behind the L4 LoadBalancer, so both
targets run the same tested proxy config (an L7 load balancer would add a forwarding rule's monthly cost and a
second, untestable-offline config).
"""

from __future__ import annotations

from infra.render import render

# The official image, pinned by tag (2.11.4 is the release in caddyserver/caddy-docker as of 2026-08). Its binary
# carries the cap_net_bind_service file capability, so it needs NET_BIND_SERVICE in the bounding set even on an
# unprivileged port, or exec fails with EPERM (caddyserver/caddy-docker#396, 2025-04).
PROXY_IMAGE = "docker.io/library/caddy:2.11.4-alpine"
PROXY_PORT = 8080  # the sidecar's listening port (unprivileged)
SLOT_PORTS = (
    5001,
    5002,
)  # droplet: the rollout's two container slots on 127.0.0.1 (infra/templates/robojam-rollout.sh)
MAX_BODY = "1MB"  # above the service's own 256 KiB limit, so the service still answers 413 with its JSON error
GRACEFUL_TIMEOUT_S = 30  # gunicorn's graceful timeout (ROBOJAM_GRACEFUL_TIMEOUT), set explicitly on every target
PRESTOP_S = 10  # GKE: time for the endpoint removal to reach every node before the pod stops accepting


def caddyfile(
    site: str,
    upstreams: list[str],
    *,
    acme_email: str = "",
    legacy_buffering: bool,
    admin: bool,
) -> str:
    """A Caddyfile serving `site` (":80", ":8080" or a domain for automatic HTTPS) in front of `upstreams`.

    `legacy_buffering`: Ubuntu 24.04's caddy 2.6 spells request buffering `buffer_requests`; 2.7+ takes
    `request_buffers SIZE`. `admin`: keep the admin endpoint on localhost:2019 (`caddy reload` uses it).
    """
    return render(
        "Caddyfile.j2",
        comment=f"Serves {site}; upstream {', '.join(upstreams)}.",
        site=site,
        upstreams=upstreams,
        acme_email=acme_email,
        max_body=MAX_BODY,
        grace_seconds=GRACEFUL_TIMEOUT_S + 10,
        legacy_buffering=legacy_buffering,
        admin=admin,
    )


def main(argv: list[str] | None = None) -> None:
    """Print a Caddyfile, e.g. to run the droplet's proxy locally in front of the rollout's two slots."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m infra.components.proxy", description=main.__doc__)
    parser.add_argument("--site", default=":80", help="site address: ':80', ':8080' or a domain (default :80)")
    parser.add_argument(
        "--upstream",
        action="append",
        help=f"upstream host:port, repeatable (default: the droplet's slots 127.0.0.1:{SLOT_PORTS[0]}/{SLOT_PORTS[1]})",
    )
    parser.add_argument("--caddy-2.7", dest="modern", action="store_true", help="Caddy 2.7+ syntax (the GKE sidecar)")
    parser.add_argument("--admin", action="store_true", help="keep the admin endpoint (needed by `caddy reload`)")
    args = parser.parse_args(argv)
    upstreams = args.upstream or [f"127.0.0.1:{port}" for port in SLOT_PORTS]
    text = caddyfile(
        args.site,
        upstreams,
        legacy_buffering=not args.modern,
        admin=args.admin,
    )
    print(text, end="")


if __name__ == "__main__":
    main()
