"""The GKE cluster: a zonal cluster with its own autoscaling node pool, and a Kubernetes provider for it.

One zonal cluster is inside GKE's free tier. Nodes are shielded, use Workload Identity and a dedicated service
account that may only write logs and metrics (and pull from this stack's repository). The workloads on it are
infra/components/gke_workload.py's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import yaml

from infra.components.gke_pod import APP
from infra.components.network import private_network

if TYPE_CHECKING:
    from infra.config import GcpSettings
    from infra.targets.gke import GkeSettings

# Before the cluster and the workloads were two components they were one, of this type: the alias keeps the
# URNs of the existing resources, so an existing stack updates in place instead of replacing its cluster.
FORMER_TYPE = "robojam:infra:GkeService"
# gke-gcloud-auth-plugin uses gcloud's active account unless told to use Application Default Credentials (the
# flag added in kubernetes/cloud-provider-gcp#264, 2021-08): with it the Kubernetes provider acts as the same
# identity as the gcp provider, and works where only ADC exists (CI, service-account keys).
AUTH_PLUGIN_ARGS = ["--use_application_default_credentials"]
# robojam:controlPlaneCidrs empty = any address. The provider has no `enabled` field: it sends enabled=false only
# when the block is absent, and the block is Optional+Computed, so removing it is no diff and the old allowlist
# stays (hashicorp/terraform-provider-google, expandMasterAuthorizedNetworksConfig). An explicit allowlist of every
# IPv4 address (the control plane's public endpoint is IPv4) is a real update that opens it again.
ANY_ADDRESS = "0.0.0.0/0"
NODE_ROLES = (  # what GKE nodes need to report logs and metrics, nothing more
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
)


def kubeconfig(cluster_name: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig for the cluster that authenticates through gke-gcloud-auth-plugin (no stored secret)."""
    context = f"gke-{cluster_name}"
    plugin = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "gke-gcloud-auth-plugin",
        "args": AUTH_PLUGIN_ARGS,
        "installHint": "gcloud components install gke-gcloud-auth-plugin",
        "provideClusterInfo": True,
        "interactiveMode": "Never",
    }
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": context,
                "cluster": {"server": f"https://{endpoint}", "certificate-authority-data": ca_certificate},
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
        "users": [{"name": context, "user": {"exec": plugin}}],
    }
    return yaml.safe_dump(config, sort_keys=False)


class GkeCluster(pulumi.ComponentResource):
    """Node service account and its roles, network, cluster, node pool, and `provider` for the workloads."""

    def __init__(
        self,
        name: str,
        gcp_settings: GcpSettings,
        settings: GkeSettings,
        repository: gcp.artifactregistry.Repository | None,
        stack: str,
        depends_on: list[pulumi.Resource] | None = None,
    ):
        super().__init__(
            "robojam:infra:GkeCluster", name, None, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=FORMER_TYPE)])
        )
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on or [])
        project, zone = gcp_settings.project, gcp_settings.zone
        node_sa = gcp.serviceaccount.Account(
            f"{name}-nodes-sa", account_id=f"robojam-nodes-{stack}"[:30], display_name="RoboJam GKE nodes", opts=child
        )
        node_member = node_sa.email.apply(lambda email: f"serviceAccount:{email}")
        for role in NODE_ROLES:
            member = f"{name}-nodes-{role.split('/')[1].replace('.', '-')}"
            gcp.projects.IAMMember(member, project=project, role=role, member=node_member, opts=child)
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
        network, subnet = private_network(name, "RoboJam GKE network", gcp_settings.region, "10.30.0.0/20", child)
        # Empty robojam:controlPlaneCidrs leaves the (authenticated) control plane reachable from anywhere.
        blocks = [
            gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                cidr_block=cidr, display_name=f"robojam:controlPlaneCidrs[{i}]"
            )
            for i, cidr in enumerate(settings.control_plane_cidrs)
        ] or [
            gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                cidr_block=ANY_ADDRESS, display_name="any address (robojam:controlPlaneCidrs empty)"
            )
        ]
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
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=blocks
            ),
            deletion_protection=False,  # `pulumi destroy` must be able to tear it down
            opts=child,
        )
        node_pool = gcp.container.NodePool(
            f"{name}-nodes",
            cluster=self.cluster.name,
            location=zone,
            # ForceNew upstream: a constant, and ignored after creation (the autoscaler moves the count anyway),
            # so changing robojam:minNodes updates the autoscaling limits in place instead of a new pool.
            initial_node_count=1,
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on or [], ignore_changes=["initialNodeCount"]),
        )
        config = pulumi.Output.all(
            self.cluster.name, self.cluster.endpoint, self.cluster.master_auth.cluster_ca_certificate
        ).apply(lambda args: kubeconfig(*args))
        self.provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=config, opts=pulumi.ResourceOptions(parent=self, depends_on=[node_pool])
        )
        self.credentials_command = (
            f"gcloud container clusters get-credentials robojam-{stack} --zone {zone} --project {project}"
        )
        self.register_outputs({"cluster": self.cluster.name})
