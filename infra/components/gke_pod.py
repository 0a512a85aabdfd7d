"""The GKE pod's containers: the service and its Caddy sidecar, probed, sized and locked down.

Pure argument builders (no resources): infra/components/gke_workload.py puts them in its Deployment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

from infra.components.proxy import GRACEFUL_TIMEOUT_S, PRESTOP_S, PROXY_IMAGE, PROXY_PORT, caddyfile
from infra.tables.image_contract import CONTAINER_PORT, HEALTH_PATH, READY_PATH, SERVICE_UID

if TYPE_CHECKING:
    from infra.targets.gke import GkeSettings

APP = "robojam"
RUN_AS_USER = SERVICE_UID
# SIGTERM comes after preStop; gunicorn then drains for up to its graceful timeout; a margin on top.
TERMINATION_GRACE_S = PRESTOP_S + GRACEFUL_TIMEOUT_S + 15


def _pre_stop() -> k8s.core.v1.LifecycleArgs:
    """Keep serving while the endpoint removal reaches every node's load-balancing rules."""
    return k8s.core.v1.LifecycleArgs(
        pre_stop=k8s.core.v1.LifecycleHandlerArgs(exec_=k8s.core.v1.ExecActionArgs(command=["sleep", str(PRESTOP_S)]))
    )


def locked_down(add: list[str] | None = None) -> k8s.core.v1.SecurityContextArgs:
    """A container's security context: non-root, read-only root, no privileges, every capability dropped."""
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        run_as_group=RUN_AS_USER,
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"], add=add),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_spec(image_ref: pulumi.Input[str], settings: GkeSettings) -> k8s.core.v1.ContainerArgs:
    """The service container: probes straight to gunicorn (off the proxy), resources, a locked-down context."""
    app = "app"
    return k8s.core.v1.ContainerArgs(
        name=APP,
        image=image_ref,
        ports=[k8s.core.v1.ContainerPortArgs(name=app, container_port=CONTAINER_PORT, protocol="TCP")],
        env=[
            k8s.core.v1.EnvVarArgs(name="ROBOJAM_BIND", value=f"0.0.0.0:{CONTAINER_PORT}"),
            k8s.core.v1.EnvVarArgs(name="ROBOJAM_GRACEFUL_TIMEOUT", value=str(GRACEFUL_TIMEOUT_S)),
        ],
        startup_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path=HEALTH_PATH, port=app),
            period_seconds=2,
            timeout_seconds=2,
            failure_threshold=60,  # up to 2 minutes to load the weights before liveness applies
        ),
        readiness_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path=READY_PATH, port=app),
            period_seconds=5,
            timeout_seconds=3,
            failure_threshold=3,
        ),
        # Tolerant of busy periods: a restart needs a minute of failed checks, never one slow answer.
        liveness_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path=HEALTH_PATH, port=app),
            period_seconds=10,
            timeout_seconds=5,
            failure_threshold=6,
        ),
        lifecycle=_pre_stop(),
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": settings.cpu_request, "memory": settings.memory_request},
            limits={"cpu": settings.cpu_limit, "memory": settings.memory_limit},
        ),
        security_context=locked_down(),
        volume_mounts=[k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")],
    )


def proxy_spec() -> k8s.core.v1.ContainerArgs:
    """The Caddy sidecar the Service reaches: it buffers each request before gunicorn sees it."""
    http = "http"
    return k8s.core.v1.ContainerArgs(
        name="proxy",
        image=PROXY_IMAGE,
        args=["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"],
        ports=[k8s.core.v1.ContainerPortArgs(name=http, container_port=PROXY_PORT, protocol="TCP")],
        env=[
            k8s.core.v1.EnvVarArgs(name="XDG_DATA_HOME", value="/tmp/caddy/data"),
            k8s.core.v1.EnvVarArgs(name="XDG_CONFIG_HOME", value="/tmp/caddy/config"),
        ],
        readiness_probe=k8s.core.v1.ProbeArgs(
            tcp_socket=k8s.core.v1.TCPSocketActionArgs(port=http), period_seconds=5, timeout_seconds=2
        ),
        lifecycle=_pre_stop(),
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": "50m", "memory": "32Mi"}, limits={"cpu": "500m", "memory": "128Mi"}
        ),
        # The image's binary has a file capability: without NET_BIND_SERVICE in the set, exec fails (EPERM).
        security_context=locked_down(add=["NET_BIND_SERVICE"]),
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
            k8s.core.v1.VolumeMountArgs(name="proxy-config", mount_path="/etc/caddy", read_only=True),
        ],
    )


def proxy_config() -> str:
    """The sidecar's Caddyfile: plain HTTP on PROXY_PORT in front of gunicorn on localhost."""
    return caddyfile(f":{PROXY_PORT}", [f"127.0.0.1:{CONTAINER_PORT}"], legacy_buffering=False, admin=False)
