"""Which inputs replace a resource when they change (ForceNew), for every input a config key changes.

Mocks accept any change, so these facts come from the providers' own source, each with the revision read
(checked 2026-12-03). A path names an input in camelCase, dotted into nested objects; the most specific entry
that is the path or a prefix of it decides. infra.changes looks every changed input up here and raises on one
that is missing, so a new input a key can change needs its fact added (tests/test_infra_changes.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.tables import resource_types as types

DIGITALOCEAN = "digitalocean/terraform-provider-digitalocean v2.99.1 (401992a), behind pulumi-digitalocean 4.84"
GOOGLE = "hashicorp/terraform-provider-google e03b762 (7.46.0 in development), behind pulumi-gcp 10.2"
DOCKER_BUILD = "pulumi/pulumi-docker-build 7bad76a, provider/internal/image.go `Diff`: every change is an update"
COMMAND = "pulumi/pulumi-command 010bd8e, provider/pkg/provider/common/inputs.go: triggers replaceOnChanges"
KUBERNETES = "Kubernetes API: a Deployment's pod template and an HPA's spec update in place (rolling update)"


@dataclass(frozen=True)
class Facts:
    type: str
    force_new: tuple[str, ...]  # input paths whose change replaces the resource
    in_place: tuple[str, ...]  # input paths checked to update in place
    source: str  # where the facts were read: repository, revision, file


FACTS = (
    Facts(
        types.DO_DROPLET,
        ("image", "region", "sshKeys", "userData", "monitoring"),
        ("size", "name", "tags"),  # size: a resize, with the droplet powered off meanwhile
        f"{DIGITALOCEAN}, digitalocean/droplet/resource_droplet.go",
    ),
    Facts(
        types.DO_FIREWALL,
        (),
        ("dropletIds", "inboundRules", "outboundRules", "name"),
        f"{DIGITALOCEAN}, digitalocean/firewall/resource_firewall.go (no ForceNew input)",
    ),
    Facts(types.DO_SSH_KEY, ("publicKey",), ("name",), f"{DIGITALOCEAN}, digitalocean/sshkey/resource_ssh_key.go"),
    Facts(types.DO_RESERVED_IP, ("region",), (), f"{DIGITALOCEAN}, digitalocean/reservedip/resource_reserved_ip.go"),
    Facts(
        types.DO_RESERVED_IP_ASSIGNMENT,
        ("ipAddress", "dropletId"),
        (),
        f"{DIGITALOCEAN}, digitalocean/reservedip/resource_reserved_ip_assignment.go",
    ),
    Facts(
        types.DO_REGISTRY,
        ("name", "region"),
        ("subscriptionTierSlug",),
        f"{DIGITALOCEAN}, digitalocean/registry/resource_container_registry.go",
    ),
    Facts(
        types.DO_REGISTRY_CREDENTIALS,
        ("registryName",),
        ("write", "expirySeconds"),
        f"{DIGITALOCEAN}, digitalocean/registry/resource_container_registry_docker_credentials.go",
    ),
    Facts(
        types.DOCKER_IMAGE,
        (),
        ("tags", "context", "dockerfile", "registries", "platforms", "buildArgs", "labels"),
        DOCKER_BUILD,
    ),
    Facts(types.REMOTE_COMMAND, ("triggers",), ("stdin", "create", "connection"), COMMAND),
    Facts(types.LOCAL_COMMAND, ("triggers",), ("create", "environment", "interpreter"), COMMAND),
    Facts(
        types.GCP_CLUSTER,
        ("location", "name", "network", "subnetwork"),
        ("masterAuthorizedNetworksConfig", "workloadIdentityConfig", "releaseChannel"),
        f"{GOOGLE}, google/services/container/resource_container_cluster.go",
    ),
    Facts(
        types.GCP_NODE_POOL,
        ("location", "cluster", "initialNodeCount"),
        ("autoscaling", "nodeConfig.machineType", "management"),  # machineType: nodes recreated by a surge upgrade
        f"{GOOGLE}, google/services/container/resource_container_node_pool.go, node_config.go",
    ),
    Facts(
        types.GCP_INSTANCE,
        (
            "guestAccelerators",
            "bootDisk.initializeParams.image",
            "scheduling.preemptible",
            "scheduling.provisioningModel",
            "scheduling.maxRunDuration",
            "zone",
        ),
        (
            "machineType",  # the program sets allow_stopping_for_update: the VM is stopped for it
            "bootDisk.initializeParams.size",
            "scheduling.automaticRestart",
            "scheduling.instanceTerminationAction",
            "labels",
            "metadataStartupScript",  # in place upstream; the program's replace_on_changes replaces the VM
        ),
        f"{GOOGLE}, google/services/compute/resource_compute_instance.go",
    ),
    Facts(
        types.GCP_BUCKET_OBJECT,
        ("name", "source", "bucket"),
        (),
        f"{GOOGLE}, google/services/storage/resource_storage_bucket_object.go",
    ),
    Facts(
        types.GCP_PROJECT_SERVICE,
        ("project", "service"),
        ("disableOnDestroy",),
        f"{GOOGLE}, google/services/resourcemanager/resource_google_project_service.go",
    ),
    Facts(
        types.GCP_IAM_MEMBER,
        ("project", "role", "member"),
        (),
        f"{GOOGLE}, google/services/resourcemanager/iam_project.go, google/tpgiamresource/resource_iam_member.go",
    ),
    Facts(
        types.GCP_REPOSITORY_IAM_MEMBER,
        ("project", "location", "repository", "role", "member"),
        (),
        f"{GOOGLE}, google/services/artifactregistry/iam_artifact_registry_repository.go, tpgiamresource",
    ),
    Facts(
        types.GCP_RUN_JOB,
        ("name", "location", "project"),
        ("template",),
        f"{GOOGLE}, google/services/cloudrunv2/resource_cloud_run_v2_job.go",
    ),
    Facts(types.K8S_DEPLOYMENT, ("metadata.name",), ("spec.template",), KUBERNETES),
    Facts(types.K8S_HPA, ("metadata.name",), ("spec",), KUBERNETES),
)
FACTS_BY_TYPE = {facts.type: facts for facts in FACTS}
# What replacing a resource costs the running service (docs/deploy.md's change table).
DOWNTIME = {
    types.DO_DROPLET: "minutes down while the new droplet boots and rolls out; a new address without a reserved IP",
    types.DO_REGISTRY: "a new registry: the image is pushed again and the old registry's images go",
    types.DO_REGISTRY_CREDENTIALS: "new registry tokens (no downtime)",
    types.DO_RESERVED_IP_ASSIGNMENT: "the reserved IP moves (seconds)",
    types.GCP_CLUSTER: "a new cluster and load balancer address: the service is down until it is rebuilt",
    types.GCP_NODE_POOL: "a new node pool: pods are down until its nodes are ready",
    types.GCP_INSTANCE: "a new VM: training starts again",
    types.GCP_BUCKET_OBJECT: "the object is uploaded again",
    types.GCP_PROJECT_SERVICE: "the API is enabled in the new project",
    types.GCP_IAM_MEMBER: "the role is granted again (seconds)",
    types.GCP_REPOSITORY_IAM_MEMBER: "the role is granted again (seconds)",
    types.REMOTE_COMMAND: "the deploy step reruns",
}


def replaces(type_token: str, path: str, replace_on_changes: tuple[str, ...] = ()) -> bool:
    """Whether a change of the input at `path` replaces the resource (a program's replace_on_changes counts)."""
    if any(path == p or path.startswith(f"{p}.") or p == "*" for p in replace_on_changes):
        return True
    facts = FACTS_BY_TYPE.get(type_token)
    known = [] if facts is None else [(p, True) for p in facts.force_new] + [(p, False) for p in facts.in_place]
    matches = [(p, forces) for p, forces in known if path == p or path.startswith(f"{p}.")]
    if not matches:
        raise KeyError(f"no ForceNew fact for {type_token} input {path!r}: add it to infra/tables/force_new.py")
    return max(matches, key=lambda match: len(match[0]))[1]
