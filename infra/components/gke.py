"""The GKE service: a zonal cluster with its own autoscaling node pool, and the service's workloads on it.

One zonal cluster is inside GKE's free tier. Nodes are shielded, use Workload Identity and a dedicated
service account; the pods run non-root on a read-only root filesystem behind a LoadBalancer Service, which
reaches each pod's Caddy sidecar (infra/components/proxy.py), never gunicorn directly.

The Deployment sets no `replicas`: the HPA owns that field. With server-side apply (the provider's default),
once the HPA has scaled, kube-controller-manager owns `.spec.replicas` and every later update of a Deployment
that sets it fails with "Apply failed with 1 conflict ... .spec.replicas" (pulumi/pulumi-kubernetes#2491,
2023-06). Created without it the Deployment starts at 1 and the HPA raises it to its minimum within seconds.
"""

from __future__ import annotations

import hashlib
import json

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import yaml

from infra.components.image import CONTAINER_PORT, SERVICE_UID
from infra.components.proxy import GRACEFUL_TIMEOUT_S, PRESTOP_S, PROXY_IMAGE, PROXY_PORT, caddyfile
from infra.config import GcpSettings, GkeSettings

APP = "robojam"
RUN_AS_USER = SERVICE_UID
# SIGTERM comes after preStop; gunicorn then drains for up to its graceful timeout; a margin on top.
TERMINATION_GRACE_S = PRESTOP_S + GRACEFUL_TIMEOUT_S + 15
# gke-gcloud-auth-plugin uses gcloud's active account unless told to use Application Default Credentials (the
# flag added in kubernetes/cloud-provider-gcp#264, 2021-08): with it the Kubernetes provider acts as the same
# identity as the gcp provider, and works where only ADC exists (CI, service-account keys).
AUTH_PLUGIN_ARGS = ["--use_application_default_credentials"]
NODE_ROLES = (  # what GKE nodes need to report logs and metrics, nothing more
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
)


def _digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def kubeconfig(cluster_name: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig for the cluster that authenticates through gke-gcloud-auth-plugin (no stored secret)."""
    context = f"gke-{cluster_name}"
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": context,
                    "cluster": {
                        "server": f"https://{endpoint}",
                        "certificate-authority-data": ca_certificate,
                    },
                }
            ],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
            "users": [
                {
                    "name": context,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "gke-gcloud-auth-plugin",
                            "args": AUTH_PLUGIN_ARGS,
                            "installHint": "gcloud components install gke-gcloud-auth-plugin",
                            "provideClusterInfo": True,
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        },
        sort_keys=False,
    )


def _pre_stop() -> k8s.core.v1.LifecycleArgs:
    """Keep serving while the endpoint removal reaches every node's load-balancing rules."""
    return k8s.core.v1.LifecycleArgs(
        pre_stop=k8s.core.v1.LifecycleHandlerArgs(exec_=k8s.core.v1.ExecActionArgs(command=["sleep", str(PRESTOP_S)]))
    )


def _locked_down(add: list[str] | None = None) -> k8s.core.v1.SecurityContextArgs:
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
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/healthz", port=app),
            period_seconds=2,
            timeout_seconds=2,
            failure_threshold=60,  # up to 2 minutes to load the weights before liveness applies
        ),
        readiness_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/readyz", port=app),
            period_seconds=5,
            timeout_seconds=3,
            failure_threshold=3,
        ),
        # Tolerant of busy periods: a restart needs a minute of failed checks, never one slow answer.
        liveness_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/healthz", port=app),
            period_seconds=10,
            timeout_seconds=5,
            failure_threshold=6,
        ),
        lifecycle=_pre_stop(),
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": settings.cpu_request, "memory": settings.memory_request},
            limits={"cpu": settings.cpu_limit, "memory": settings.memory_limit},
        ),
        security_context=_locked_down(),
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
        security_context=_locked_down(add=["NET_BIND_SERVICE"]),
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
            k8s.core.v1.VolumeMountArgs(name="proxy-config", mount_path="/etc/caddy", read_only=True),
        ],
    )


def proxy_config() -> str:
    """The sidecar's Caddyfile: plain HTTP on PROXY_PORT in front of gunicorn on localhost."""
    return caddyfile(f":{PROXY_PORT}", [f"127.0.0.1:{CONTAINER_PORT}"], legacy_buffering=False, admin=False)


class GkeService(pulumi.ComponentResource):
    """Cluster, node pool, kubernetes provider and the service's Namespace/Deployment/Service/HPA/PDB."""

    def __init__(
        self,
        name: str,
        gcp_settings: GcpSettings,
        settings: GkeSettings,
        image_ref: pulumi.Input[str],
        repository: gcp.artifactregistry.Repository | None,
        stack: str,
        depends_on: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("robojam:infra:GkeService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on or [])
        project, zone = gcp_settings.project, gcp_settings.zone

        node_sa = gcp.serviceaccount.Account(
            f"{name}-nodes-sa",
            account_id=f"robojam-nodes-{stack}"[:30],
            display_name="RoboJam GKE nodes",
            opts=child,
        )
        node_member = node_sa.email.apply(lambda email: f"serviceAccount:{email}")
        for role in NODE_ROLES:
            gcp.projects.IAMMember(
                f"{name}-nodes-{role.split('/')[1].replace('.', '-')}",
                project=project,
                role=role,
                member=node_member,
                opts=child,
            )
        if repository is not None:  # pull access to this one repository only
            gcp.artifactregistry.RepositoryIamMember(
                f"{name}-nodes-pull",
                project=project,
                location=repository.location,
                repository=repository.repository_id,
                role="roles/artifactregistry.reader",
                member=node_member,
                opts=child,
            )

        network = gcp.compute.Network(
            f"{name}-net", auto_create_subnetworks=False, description="RoboJam GKE network", opts=child
        )
        subnet = gcp.compute.Subnetwork(
            f"{name}-subnet",
            network=network.id,
            region=gcp_settings.region,
            ip_cidr_range="10.30.0.0/20",
            private_ip_google_access=True,
            opts=child,
        )

        self.cluster = gcp.container.Cluster(
            f"{name}-cluster",
            name=f"robojam-{stack}",
            location=zone,  # zonal: one control plane inside the free tier
            network=network.id,
            subnetwork=subnet.id,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(),
            remove_default_node_pool=True,
            initial_node_count=1,
            enable_shielded_nodes=True,
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                workload_pool=f"{project}.svc.id.goog"
            ),
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel="REGULAR"),
            # Empty robojam:controlPlaneCidrs leaves the (authenticated) control plane reachable from anywhere.
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=[
                    gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                        cidr_block=cidr, display_name=f"robojam:controlPlaneCidrs[{i}]"
                    )
                    for i, cidr in enumerate(settings.control_plane_cidrs)
                ]
            )
            if settings.control_plane_cidrs
            else None,
            deletion_protection=False,  # `pulumi destroy` must be able to tear it down
            opts=child,
        )
        self.node_pool = gcp.container.NodePool(
            f"{name}-nodes",
            cluster=self.cluster.name,
            location=zone,
            initial_node_count=max(settings.min_nodes, 1),
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                min_node_count=settings.min_nodes, max_node_count=settings.max_nodes
            ),
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=settings.node_machine_type,
                service_account=node_sa.email,
                oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True
                ),
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
                    mode="GKE_METADATA"
                ),
                metadata={"disable-legacy-endpoints": "true"},
                labels={"app": APP},
            ),
            opts=child,
        )

        config = pulumi.Output.all(
            self.cluster.name, self.cluster.endpoint, self.cluster.master_auth.cluster_ca_certificate
        ).apply(lambda args: kubeconfig(*args))
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=config,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.node_pool]),
        )
        on_cluster = pulumi.ResourceOptions(parent=self, provider=provider)

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
                template=k8s.core.v1.PodTemplateSpecArgs(
                    # A changed Caddyfile rolls the pods (a ConfigMap change alone would not).
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=labels,
                        annotations={"robojam/proxy-config": proxy_files.data.apply(_digest)},
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
                            k8s.core.v1.VolumeArgs(
                                name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="proxy-config",
                                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=proxy_files.metadata.name),
                            ),
                        ],
                    ),
                ),
            ),
            opts=on_cluster,
        )
        self.service = k8s.core.v1.Service(
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
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(
                                type="Utilization", average_utilization=settings.cpu_target_percent
                            ),
                        ),
                    )
                ],
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

        ingress = self.service.status.load_balancer.ingress
        self.url = ingress.apply(lambda items: f"http://{(items[0].ip or items[0].hostname)}" if items else None)
        self.credentials_command = (
            f"gcloud container clusters get-credentials robojam-{stack} --zone {zone} --project {project}"
        )
        self.register_outputs({"url": self.url})
