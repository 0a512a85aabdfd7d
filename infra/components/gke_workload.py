"""The service's workloads on the GKE cluster: Namespace, Caddy config, Deployment, LoadBalancer Service, HPA, PDB.

The pods run non-root on a read-only root filesystem behind a LoadBalancer Service, which reaches each pod's
Caddy sidecar (infra/components/proxy.py), never gunicorn directly; the containers are infra/components/gke_pod.py's.

The Deployment sets no `replicas`: the HPA owns that field. With server-side apply (the provider's default),
once the HPA has scaled, kube-controller-manager owns `.spec.replicas` and every later update of a Deployment
that sets it fails with "Apply failed with 1 conflict ... .spec.replicas" (pulumi/pulumi-kubernetes#2491,
2023-06). Created without it the Deployment starts at 1 and the HPA raises it to its minimum within seconds.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

from infra.components.gke_cluster import FORMER_TYPE
from infra.components.gke_pod import APP, RUN_AS_USER, TERMINATION_GRACE_S, container_spec, proxy_config, proxy_spec

if TYPE_CHECKING:
    from infra.targets.gke import GkeSettings


def _digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _pod(image_ref: pulumi.Input[str], settings: GkeSettings, proxy_files: k8s.core.v1.ConfigMap, labels: dict):
    """The pod template: both containers, a pod-wide non-root context, /tmp and the sidecar's Caddyfile."""
    return k8s.core.v1.PodTemplateSpecArgs(
        # A changed Caddyfile rolls the pods (a ConfigMap change alone would not).
        metadata=k8s.meta.v1.ObjectMetaArgs(
            labels=labels, annotations={"robojam/proxy-config": proxy_files.data.apply(_digest)}
        ),
        spec=k8s.core.v1.PodSpecArgs(
            automount_service_account_token=False,
            termination_grace_period_seconds=TERMINATION_GRACE_S,
            security_context=k8s.core.v1.PodSecurityContextArgs(
                run_as_non_root=True,
                run_as_user=RUN_AS_USER,
                run_as_group=RUN_AS_USER,
                fs_group=RUN_AS_USER,
                seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
            ),
            containers=[container_spec(image_ref, settings), proxy_spec()],
            volumes=[
                k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")),
                k8s.core.v1.VolumeArgs(
                    name="proxy-config",
                    config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=proxy_files.metadata.name),
                ),
            ],
        ),
    )


def _cpu_metric(percent: int) -> k8s.autoscaling.v2.MetricSpecArgs:
    target = k8s.autoscaling.v2.MetricTargetArgs(type="Utilization", average_utilization=percent)
    return k8s.autoscaling.v2.MetricSpecArgs(
        type="Resource", resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(name="cpu", target=target)
    )


class GkeWorkload(pulumi.ComponentResource):
    """The service on the cluster `provider` reaches; `url` is its load balancer's address once it has one."""

    def __init__(self, name: str, settings: GkeSettings, image_ref: pulumi.Input[str], provider: k8s.Provider):
        super().__init__("robojam:infra:GkeWorkload", name, None, None)
        # These resources were children of the former single component: the alias keeps their URNs.
        former = pulumi.create_urn(name, FORMER_TYPE, parent=pulumi.runtime.get_root_resource())
        moved = pulumi.Alias(parent=former)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=provider, aliases=[moved])
        labels = {"app.kubernetes.io/name": APP}
        namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": APP, "labels": {**labels, "pod-security.kubernetes.io/enforce": "restricted"}},
            opts=on_cluster,
        )
        meta = {"namespace": namespace.metadata.name, "labels": labels}
        proxy_files = k8s.core.v1.ConfigMap(
            f"{name}-proxy-config",
            metadata={**meta, "name": f"{APP}-proxy"},
            data={"Caddyfile": proxy_config()},
            opts=on_cluster,
        )
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={**meta, "name": APP},
            spec=k8s.apps.v1.DeploymentSpecArgs(
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                template=_pod(image_ref, settings, proxy_files, labels),
            ),
            opts=on_cluster,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={**meta, "name": APP},
            spec=k8s.core.v1.ServiceSpecArgs(
                type="LoadBalancer",
                selector=labels,
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port="http", protocol="TCP")],
            ),
            opts=on_cluster,
        )
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata={**meta, "name": APP},
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=deployment.metadata.name
                ),
                min_replicas=settings.replicas,
                max_replicas=settings.max_replicas,
                metrics=[_cpu_metric(settings.cpu_target_percent)],
            ),
            opts=on_cluster,
        )
        # Keep one pod serving through node drains; with a single replica, never block the drain.
        budget = {"min_available": 1} if settings.replicas > 1 else {"max_unavailable": 1}
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata={**meta, "name": APP},
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels), **budget
            ),
            opts=on_cluster,
        )
        ingress = service.status.load_balancer.ingress
        self.url = ingress.apply(lambda items: f"http://{(items[0].ip or items[0].hostname)}" if items else None)
        self.register_outputs({"url": self.url})
