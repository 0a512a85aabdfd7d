"""Step 5: the program's own GKE Deployment (the `gke` stack's recorded plan) under `podman kube play`.

Checks that the read-only root filesystem is enforced (a write outside /tmp fails, /tmp is writable), that the
process runs as the manifest's non-root UID, that every probe's path answers, that /api/predict works, and that
the pod stops cleanly (exit 0) within its termination grace period.
"""

from __future__ import annotations

import re
import time

import requests
import yaml

from devtools.ports import free_port
from infra.mock_plan import plan_stack
from infra.tables import resource_types as types
from infra.tables.image_contract import CONTAINER_PORT, READY_PATH
from staging import adapt, client
from staging.context import Context
from staging.errors import StagingError

STACK = "gke"
DEPLOYMENT = types.K8S_DEPLOYMENT
KUBERNETES_DEFAULT_GRACE = 30  # terminationGracePeriodSeconds when the pod spec does not set it


def deployment(stack: str = STACK) -> dict:
    return plan_stack(stack).one(DEPLOYMENT).inputs


def _exec(ctx: Context, container: str, script: str):
    return ctx.containers.podman("exec", container, "sh", "-c", script, check=False, timeout=30)


def check_filesystem(ctx: Context, container: str) -> None:
    outside = _exec(ctx, container, "echo staging > /app/staging-write-check")
    if outside.returncode == 0:
        raise StagingError("the root filesystem is writable: a write to /app succeeded.")
    inside = _exec(ctx, container, "echo staging > /tmp/staging-write-check && rm /tmp/staging-write-check")
    if inside.returncode != 0:
        raise StagingError(f"/tmp (the emptyDir) is not writable: {inside.stderr.strip()}")


def check_user(ctx: Context, container: str, uid: int) -> None:
    status = _exec(ctx, container, "cat /proc/1/status").stdout
    found = re.search(r"(?m)^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status)
    if not found or {int(v) for v in found.groups()} != {uid}:
        raise StagingError(f"the service does not run as UID {uid}: {found.group(0) if found else status[:200]!r}")


def run(ctx: Context) -> tuple[str, dict]:
    recorded = deployment()
    pod_spec = recorded["spec"]["template"]["spec"]
    services = [c for c in pod_spec["containers"] if adapt.is_service(c)]
    if len(services) != 1:
        raise StagingError(f"the Deployment has {len(services)} service containers (with ROBOJAM_BIND); expected 1.")
    (container_spec,) = services
    uid = (container_spec.get("securityContext") or {}).get("runAsUser") or pod_spec["securityContext"]["runAsUser"]
    if uid == 0:
        raise StagingError("the Deployment runs its container as root.")
    ports = [p["containerPort"] for p in container_spec.get("ports", [])]
    if ports != [CONTAINER_PORT]:
        raise StagingError(f"the Deployment's container ports {ports} are not the image's port {CONTAINER_PORT}.")
    grace = pod_spec.get("terminationGracePeriodSeconds", KUBERNETES_DEFAULT_GRACE)
    port = free_port()
    manifest = adapt.kube_deployment(recorded, ctx.facts["image"], port)
    path = ctx.path("gke") / "deployment.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    ctx.log(f"manifest (changes: {'; '.join(adapt.CHANGES['gke'])}):\n{path.read_text()}")
    url = f"http://127.0.0.1:{port}"
    ctx.containers.podman("kube", "down", str(path), check=False, timeout=120)
    try:
        played = ctx.containers.podman("kube", "play", str(path), timeout=300)
        ctx.log(played.stdout + played.stderr)
        container = f"{manifest['metadata']['name']}-pod-0-{container_spec['name']}"
        pod = f"{manifest['metadata']['name']}-pod-0"
        ready = client.wait_for(f"{url}{READY_PATH}", timeout=120)
        check_filesystem(ctx, container)
        check_user(ctx, container, uid)
        probes = adapt.probe_paths(recorded)
        for probe, probe_path in probes.items():
            answer = requests.get(url + probe_path, timeout=5)
            if answer.status_code != 200:
                raise StagingError(f"the {probe} path {probe_path} answered {answer.status_code}.")
        events = client.predict(url)
        start = time.monotonic()
        ctx.containers.podman("pod", "stop", "--time", str(grace), pod, timeout=grace + 60)
        stop_seconds = time.monotonic() - start
        exit_code = ctx.containers.podman("inspect", "--format", "{{.State.ExitCode}}", container).stdout.strip()
        if exit_code != "0":
            raise StagingError(
                f"the service container exited {exit_code} on stop (137: killed after the grace period)."
            )
    finally:
        ctx.containers.podman("kube", "down", str(path), check=False, timeout=120)
    measured = {"ready_seconds": round(ready, 1), "uid": uid, "probes": probes, "stop_seconds": round(stop_seconds, 2)}
    detail = (
        f"ready in {ready:.1f} s, read-only root enforced, UID {uid}, probes {', '.join(sorted(set(probes.values())))} "
        f"200, /api/predict {len(events)} touches, clean stop in {stop_seconds:.1f} s (grace {grace} s)"
    )
    return detail, measured
