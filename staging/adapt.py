"""Every change staging makes to what the program deploys, so it runs under podman on one machine. Nothing else
in `staging/` alters a flag, a manifest or a config: the rest is read from the rendered plan as it is.

Podman takes docker's command line and Kubernetes pod specs; what differs here is listed in CHANGES, per target.
"""

from __future__ import annotations

import copy
import re

LOOPBACK = re.compile(r"\b(?:127\.0\.0\.1|localhost):\d+\b")

CHANGES = {
    "all": [
        "the image reference is the locally built image (nothing is pulled: there is no registry)",
        "host networking (no bridge here): the service listens on a free 127.0.0.1 port instead of 0.0.0.0:5000, "
        "so it cannot clash with other servers on this machine or be reached from outside it",
    ],
    "droplet": [
        "the rollout script runs with DOCKER = podman (its config files in the build folder), IMAGE = the local "
        "image, PULL=0 and two free loopback slot ports for PORTS (Caddy's upstreams follow them); the deploy "
        "step's one-run registry login (DOCKER_CONFIG) is not needed",
        "PROXY_CONFIG is staging's copy of the Caddyfile in the build folder (never /etc/caddy) and PROXY_RELOAD "
        "reloads staging's own Caddy (`python -m staging.caddy reload`) instead of `systemctl reload caddy`",
        "`run --publish HOST:PORT:5000` becomes `--env ROBOJAM_BIND=HOST:PORT` (host networking has no port mapping)",
        "`run --health-interval disable`: podman schedules HEALTHCHECKs with systemd timers and there is no systemd "
        "here; staging runs the image's HEALTHCHECK itself with `podman healthcheck run`",
    ],
    "gke": [
        "`replicas: 1`: podman runs one pod, and host networking gives every replica the same port",
        "`hostNetwork: true`",
        "sidecars (containers other than the service, e.g. a proxy) and the volumes only they mount are removed: "
        "their images cannot be pulled here (the HTTPS step runs the droplet's Caddy config with Debian's caddy)",
        "`ports` are dropped: podman refuses port mappings with host networking",
        "probes are removed: podman turns them into healthchecks that run `curl` inside the container (the slim "
        "image has none) on systemd timers (there is no systemd here); staging requests each probe's path itself",
    ],
    "caddy": [
        "TLS from Caddy's internal CA (`tls internal`) instead of ACME; its root is not installed anywhere",
        "listens on free 127.0.0.1 ports instead of :80/:443; the domain is mapped to 127.0.0.1 by the client "
        "(curl --resolve)",
        "the Caddyfile is copied into the build folder with its loopback upstreams (the reverse_proxy line the "
        "rollout reorders) pointed at the rollout slots' free ports; the admin API on a free loopback port (the "
        "rollout's reload uses it); certificates under the build folder",
    ],
}


def is_service(container: dict) -> bool:
    """The service's own container (it is told where to listen), as opposed to a sidecar."""
    return any(env.get("name") == "ROBOJAM_BIND" for env in container.get("env", []))


def kube_deployment(deployment: dict, image: str, port: int) -> dict:
    """The recorded Deployment, changed only as CHANGES["gke"] says."""
    manifest = copy.deepcopy(deployment)
    manifest.setdefault("apiVersion", "apps/v1")
    manifest.setdefault("kind", "Deployment")
    spec = manifest["spec"]
    spec["replicas"] = 1
    pod = spec["template"]["spec"]
    pod["hostNetwork"] = True
    pod["containers"] = [c for c in pod["containers"] if is_service(c)]
    mounted = {m["name"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
    if "volumes" in pod:
        pod["volumes"] = [v for v in pod["volumes"] if v["name"] in mounted]
    for container in pod["containers"]:
        container["image"] = image
        container.pop("ports", None)
        for env in container.get("env", []):
            if env.get("name") == "ROBOJAM_BIND":
                env["value"] = f"127.0.0.1:{port}"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            container.pop(probe, None)
    return manifest


def probe_paths(deployment: dict) -> dict[str, str]:
    """The service container's HTTP probe paths in the recorded Deployment (staging requests them itself)."""
    paths = {}
    for container in filter(is_service, deployment["spec"]["template"]["spec"]["containers"]):
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            http = (container.get(probe) or {}).get("httpGet")
            if http:
                paths[probe] = http["path"]
    return paths


def caddyfile(text: str, upstream) -> str:
    """The rendered Caddyfile with each loopback address replaced by `upstream(address)` (CHANGES["caddy"])."""
    return LOOPBACK.sub(lambda m: upstream(m.group(0)), text)


def caddy_json(config: dict, *, http_port: int, https_port: int, admin_port: int, storage: str) -> dict:
    """The Caddyfile's JSON (`caddy adapt`), changed only as CHANGES["caddy"] says."""
    config = copy.deepcopy(config)
    config["admin"] = {"listen": f"127.0.0.1:{admin_port}"}
    config["storage"] = {"module": "file_system", "root": storage}
    apps = config.setdefault("apps", {})
    http = apps.setdefault("http", {})
    http["http_port"], http["https_port"] = http_port, https_port
    ports = {"80": http_port, "443": https_port}
    for server in http.get("servers", {}).values():
        listen = [address.rsplit(":", 1)[-1] for address in server["listen"]]
        server["listen"] = [f"127.0.0.1:{ports.get(port, port)}" for port in listen]
    apps["tls"] = {"automation": {"policies": [{"issuers": [{"module": "internal"}]}]}}
    apps["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
    return config


def blocked_paths(config: dict) -> list[str]:
    """Paths the Caddy config answers itself with an error status (what the infra says is not public)."""
    paths = []
    for node in _nodes(config):
        handlers = node.get("handle") or []
        if any(h.get("handler") == "static_response" and int(h.get("status_code", 200)) >= 400 for h in handlers):
            for matcher in node.get("match") or []:
                paths += [p.rstrip("*").rstrip("/") or "/" for p in matcher.get("path", [])]
    return sorted(set(paths))


def _nodes(node):
    """Every dict in a JSON tree."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)
