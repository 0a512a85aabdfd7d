"""The gke target: the service on a zonal GKE cluster, autoscaled by an HPA over an autoscaling node pool."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from infra.components.api_services import GcpApiServices
from infra.components.gke_cluster import GkeCluster
from infra.components.gke_workload import GkeWorkload
from infra.components.image import GcpServiceImage
from infra.config import (
    GCE_MACHINE,
    GCP_KEYS,
    IMAGE,
    ConfigError,
    Key,
    cidr_list,
    integer,
    not_above,
    pattern,
    quantity,
)
from infra.tables import resource_types as types
from infra.targets.target import Target
from infra.weights import PREBUILT_MODEL, WEIGHTS, ServedWeights

# What the cluster's resources need enabled on a fresh project (the policy pack checks the mapping).
APIS = [
    "compute.googleapis.com",
    "container.googleapis.com",
    "iam.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "artifactregistry.googleapis.com",
]
CPU = pattern(r"^([0-9]+m|[0-9]+(\.[0-9]+)?)$", "a CPU quantity such as 250m or 1")
MEMORY = pattern(r"^[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?$", "a memory quantity such as 256Mi")

KEYS = (
    IMAGE,
    WEIGHTS,
    *GCP_KEYS,
    Key(
        "robojam:nodeMachineType",
        "node_machine_type",
        "e2-medium",
        "node pool machine type",
        pattern(GCE_MACHINE, "a Compute Engine machine type such as e2-medium"),
    ),
    Key("robojam:minNodes", "min_nodes", 1, "node pool autoscaling minimum (at most `maxNodes`)", integer(low=0)),
    Key("robojam:maxNodes", "max_nodes", 3, "node pool autoscaling maximum", integer(low=1)),
    Key(
        "robojam:replicas",
        "replicas",
        2,
        "HPA minimum replicas (at least 1); the Deployment leaves `replicas` to the HPA",
        integer(1),
    ),
    Key("robojam:maxReplicas", "max_replicas", 6, "HPA maximum (at least `replicas`)", integer(low=1)),
    Key(
        "robojam:cpuTargetPercent",
        "cpu_target_percent",
        70,
        "HPA target average CPU utilisation, 1-100",
        integer(low=1, high=100),
    ),
    Key("robojam:cpuRequest", "cpu_request", "250m", "container CPU request", CPU),
    Key("robojam:cpuLimit", "cpu_limit", "1", "container CPU limit", CPU),
    Key("robojam:memoryRequest", "memory_request", "256Mi", "container memory request", MEMORY),
    Key("robojam:memoryLimit", "memory_limit", "512Mi", "container memory limit", MEMORY),
    Key(
        "robojam:controlPlaneCidrs",
        "control_plane_cidrs",
        [],
        "CIDRs that may reach the cluster's control plane (`master_authorized_networks_config`); must include "
        "where you run `pulumi up` and `kubectl` from; never `0.0.0.0/0`; empty = any address (still authenticated; "
        "sent as an explicit `0.0.0.0/0`, so clearing the list opens it again)",
        cidr_list("the control plane"),
    ),
)


@dataclass(frozen=True)
class GkeSettings:
    node_machine_type: str
    min_nodes: int
    max_nodes: int
    replicas: int
    max_replicas: int
    cpu_target_percent: int
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    control_plane_cidrs: tuple[str, ...] = ()
    weights: ServedWeights | None = None


def check(v: dict, key: Mapping[str, str]) -> None:
    """Minimums not above maximums, requests not above limits."""
    not_above(v, key, "min_nodes", "max_nodes")
    if v["max_replicas"] < v["replicas"]:
        raise ConfigError(
            f"{key['max_replicas']} ({v['max_replicas']}) must be at least {key['replicas']} ({v['replicas']})."
        )
    not_above(v, key, "cpu_request", "cpu_limit", measure=quantity)
    not_above(v, key, "memory_request", "memory_limit", measure=quantity)


def build(cfg) -> None:
    """The APIs, the image (unless prebuilt), the cluster and the workloads on it, and their exports."""
    apis = GcpApiServices("apis", cfg.gcp.project, APIS if not cfg.image else [a for a in APIS if "artifact" not in a])
    image = GcpServiceImage(
        "image", cfg.gcp, prebuilt=cfg.image, depends_on=apis.services, weights=cfg.settings.weights
    )
    pulumi.export("model", cfg.settings.weights.output() if not cfg.image else PREBUILT_MODEL)
    cluster = GkeCluster("gke", cfg.gcp, cfg.settings, image.repository, stack=cfg.stack, depends_on=apis.services)
    workload = GkeWorkload("gke", cfg.settings, image.ref, cluster.provider)
    pulumi.export("url", workload.url)
    pulumi.export("image", image.ref)
    pulumi.export("cluster", cluster.cluster.name)
    pulumi.export("credentials_command", cluster.credentials_command)
    pulumi.export(
        "next_steps",
        (
            f"Run `{cluster.credentials_command}`, then `kubectl -n robojam get pods,svc,hpa`; the url "
            "output is the load balancer's address (`up` waits for it)."
        ),
    )


TARGET = Target(
    name="gke",
    keys=KEYS,
    settings=GkeSettings,
    check=check,
    build=build,
    cloud="gcp",
    serves=True,
    components=(GcpApiServices, GcpServiceImage, GkeCluster, GkeWorkload),
    billed_type=types.GCP_NODE_POOL,
    catalogue_kinds=("gke", "machine", "disk", "forwarding-rule", "registry-storage"),
    staging_steps=("gke",),
)
