"""Every change staging makes to what the program deploys, so it runs under podman on one machine. Nothing else
in `staging/` alters a flag, a manifest or a config: the rest is read from the rendered plan as it is.

Podman takes docker's `run` flags and Kubernetes pod specs; what differs here is listed in CHANGES, per target.
"""

from __future__ import annotations

import copy

from staging.droplet_unit import DockerCommand

CHANGES = {
    "all": [
        "the image reference is the locally built image (nothing is pulled: there is no registry)",
        "host networking (no bridge here): the service listens on a free 127.0.0.1 port instead of 0.0.0.0:5000, "
        "so it cannot clash with other servers on this machine or be reached from outside it",
    ],
    "droplet": [
        "`docker` becomes `podman`; docker's global options (`--config DIR`, registry credentials) are dropped",
        "`--publish` is dropped: with host networking there is no port mapping",
        "`--health-interval disable`: podman schedules HEALTHCHECKs with systemd timers and there is no systemd "
        "here; staging runs the image's HEALTHCHECK itself with `podman healthcheck run`",
    ],
    "gke": [
        "`replicas: 1`: podman runs one pod, and host networking gives every replica the same port",
        "`hostNetwork: true`",
        "`ports` are dropped: podman refuses port mappings with host networking",
        "probes are removed: podman turns them into healthchecks that run `curl` inside the container (the slim "
        "image has none) on systemd timers (there is no systemd here); staging requests each probe's path itself",
    ],
    "caddy": [
        "TLS from Caddy's internal CA (`tls internal`) instead of ACME; its root is not installed anywhere",
        "listens on free 127.0.0.1 ports instead of :80/:443; the domain is mapped to 127.0.0.1 by the client "
        "(curl --resolve)",
        "the upstream is the container's loopback port; admin API off; certificates under the build folder",
    ],
}

CONTAINER_PORT = 5000  # the image's port; also in infra.components.image, checked in the GKE step


def bind_env(port: int) -> str:
    return f"ROBOJAM_BIND=127.0.0.1:{port}"


def droplet_run(run: DockerCommand, image: str, port: int) -> list[str]:
    """`podman run ...` for the unit's `docker run ...`."""
    argv = ["podman", "run", "--health-interval", "disable"]
    for name, value in run.options:
        if name in ("--publish", "-p"):
            continue
        if name in ("--env", "-e") and value is not None and value.startswith("ROBOJAM_BIND="):
            value = bind_env(port)
        argv += [name] if value is None else [name, value]
    if not any(v.startswith("ROBOJAM_BIND=") for v in run.values("--env", "-e")):
        argv += ["--env", bind_env(port)]
    return [*argv, image, *run.args[1:]]


def droplet_stop(stop: DockerCommand | None, name: str) -> list[str]:
    """`podman stop ...` for the unit's ExecStop (podman's stop also waits 10 s by default, as docker's)."""
    if stop is None:
        return ["podman", "stop", name]
    argv = ["podman", "stop"]
    for option, value in stop.options:
        argv += [option] if value is None else [option, value]
    return [*argv, *stop.args]


def kube_deployment(deployment: dict, image: str, port: int) -> dict:
    """The recorded Deployment, changed only as CHANGES["gke"] says."""
    manifest = copy.deepcopy(deployment)
    manifest.setdefault("apiVersion", "apps/v1")
    manifest.setdefault("kind", "Deployment")
    spec = manifest["spec"]
    spec["replicas"] = 1
    pod = spec["template"]["spec"]
    pod["hostNetwork"] = True
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
    """Each probe's HTTP path in the recorded Deployment (what staging requests instead of podman)."""
    paths = {}
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            http = (container.get(probe) or {}).get("httpGet")
            if http:
                paths[probe] = http["path"]
    return paths


def caddy_json(config: dict, *, http_port: int, https_port: int, upstream, storage: str) -> dict:
    """The Caddyfile's JSON (`caddy adapt`), changed only as CHANGES["caddy"] says; `upstream(dial)` -> new dial."""
    config = copy.deepcopy(config)
    config["admin"] = {"disabled": True}
    config["storage"] = {"module": "file_system", "root": storage}
    apps = config.setdefault("apps", {})
    http = apps.setdefault("http", {})
    http["http_port"], http["https_port"] = http_port, https_port
    ports = {"80": http_port, "443": https_port}
    for server in http.get("servers", {}).values():
        listen = [address.rsplit(":", 1)[-1] for address in server["listen"]]
        server["listen"] = [f"127.0.0.1:{ports.get(port, port)}" for port in listen]
    for node in _nodes(http):
        if isinstance(node.get("dial"), str):
            node["dial"] = upstream(node["dial"])
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
