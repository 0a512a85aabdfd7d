"""The GKE service: a zonal cluster with its own autoscaling node pool, and the service's workloads on it.

One zonal cluster is inside GKE's free tier. Nodes are shielded, use Workload Identity and a dedicated
service account; the pods run non-root on a read-only root filesystem behind a LoadBalancer Service.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import yaml

from infra.components.image import CONTAINER_PORT, SERVICE_UID
from infra.config import GcpSettings, GkeSettings

APP = "robojam"
RUN_AS_USER = SERVICE_UID
NODE_ROLES = (  # what GKE nodes need to report logs and metrics, nothing more
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
)


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


def container_spec(image_ref: pulumi.Input[str], settings: GkeSettings) -> k8s.core.v1.ContainerArgs:
    """The service container: probes, resources and a locked-down security context."""
    http = "http"
    return k8s.core.v1.ContainerArgs(
        name=APP,
        image=image_ref,
        ports=[k8s.core.v1.ContainerPortArgs(name=http, container_port=CONTAINER_PORT, protocol="TCP")],
        env=[k8s.core.v1.EnvVarArgs(name="ROBOJAM_BIND", value=f"0.0.0.0:{CONTAINER_PORT}")],
        readiness_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/readyz", port=http),
            initial_delay_seconds=3,
            period_seconds=5,
            timeout_seconds=2,
            failure_threshold=3,
        ),
        liveness_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/healthz", port=http),
            initial_delay_seconds=10,
            period_seconds=10,
            timeout_seconds=2,
            failure_threshold=3,
        ),
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": settings.cpu_request, "memory": settings.memory_request},
            limits={"cpu": settings.cpu_limit, "memory": settings.memory_limit},
        ),
        security_context=k8s.core.v1.SecurityContextArgs(
            run_as_non_root=True,
            run_as_user=RUN_AS_USER,
            run_as_group=RUN_AS_USER,
            allow_privilege_escalation=False,
            privileged=False,
            read_only_root_filesystem=True,
            capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
        ),
        volume_mounts=[k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")],
    )


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
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("robojam:infra:GkeService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
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

        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={**meta, "name": APP},
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=settings.replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        automount_service_account_token=False,
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_non_root=True,
                            run_as_user=RUN_AS_USER,
                            run_as_group=RUN_AS_USER,
                            fs_group=RUN_AS_USER,
                            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                        ),
                        containers=[container_spec(image_ref, settings)],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")
                            )
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
