"""The service image: built from the top-level Dockerfile and pushed, or a configured prebuilt image.

GCP targets push to an Artifact Registry repository this component creates; the droplet pushes to a
DigitalOcean Container Registry (created here unless it exists already). Deployments use `ref`, the pushed
image's digest reference, so a new build always rolls out and an old one can never be picked by a tag.
"""

from __future__ import annotations

import base64
import json
import os
from typing import TYPE_CHECKING

import pulumi
import pulumi_command as command
import pulumi_digitalocean as digitalocean
import pulumi_docker_build as docker_build
import pulumi_gcp as gcp

from infra.weights import LABEL, ServedWeights
from robojam_format.layout import REPO_ROOT

if TYPE_CHECKING:
    from infra.config import GcpSettings

IMAGE_NAME = "robojam"
DOCR_SERVER = "registry.digitalocean.com"
# DOCR tokens (push and read-only pull) expire after a day, not the provider's default of 1,576,800,000 s (~50
# years). Pulumi.yaml's `options: refresh: always` makes every `pulumi up` refresh first, and the provider's read
# issues a new token once the old one has expired (terraform-provider-digitalocean,
# updateExpiredDockerCredentials); pulumi-docker-build ignores a changed password, the rollout step reruns.
REGISTRY_TOKEN_SECONDS = 24 * 3600
# Garbage collection of a DigitalOcean registry (POST /v2/registry/NAME/garbage-collection, the API behind
# `doctl registry garbage-collection start --include-untagged-manifests`): frees the images no tag names.
GC_TYPE = "untagged manifests and unreferenced blobs"
GC_SCRIPT = f"""set -u
token="${{DIGITALOCEAN_TOKEN:-${{DIGITALOCEAN_ACCESS_TOKEN:-}}}}"
curl -fsS -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/json" \\
  -d '{{"type": "{GC_TYPE}"}}' "https://api.digitalocean.com/v2/registry/$REGISTRY/garbage-collection" >/dev/null \\
  || echo "registry garbage collection not started (one may be running); the next push starts another" >&2
"""


def build_paths(cwd: str | None = None) -> tuple[str, str]:
    """(context, Dockerfile) relative to the working directory: the same strings from any checkout.

    Pulumi runs the program and its providers in the project's `main` directory (infra/), and
    pulumi-docker-build compares the context location literally and resolves it from there: an absolute path
    would differ between two clones and rebuild the image.
    """
    context = os.path.relpath(REPO_ROOT, cwd or os.getcwd())
    return context, os.path.join(context, "Dockerfile")


def _build(
    name: str,
    tag: pulumi.Input[str],
    address: pulumi.Input[str],
    username: pulumi.Input[str],
    password: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    weights: ServedWeights | None = None,
) -> docker_build.Image:
    context, dockerfile = build_paths()
    # robojam:weights (infra/weights.py): the Dockerfile's WEIGHTS build argument, and the file's sha256 as a label.
    served = {"build_args": {"WEIGHTS": weights.path}, "labels": {LABEL: weights.sha256}} if weights else {}
    return docker_build.Image(
        name,
        **served,
        context=docker_build.BuildContextArgs(location=context),
        dockerfile=docker_build.DockerfileArgs(location=dockerfile),
        platforms=[docker_build.Platform.LINUX_AMD64],
        tags=[tag],
        push=True,
        registries=[
            docker_build.RegistryArgs(address=address, username=username, password=pulumi.Output.secret(password))
        ],
        opts=opts,
    )


class GcpServiceImage(pulumi.ComponentResource):
    """An Artifact Registry repository and the service image pushed to it (or a prebuilt image)."""

    ref: pulumi.Output[str]
    repository: gcp.artifactregistry.Repository | None

    def __init__(
        self,
        name: str,
        gcp_settings: GcpSettings,
        prebuilt: str = "",
        depends_on: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        weights: ServedWeights | None = None,
    ):
        super().__init__("robojam:infra:GcpServiceImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on or [])
        self.repository = None
        if prebuilt:
            self.ref = pulumi.Output.from_input(prebuilt)
        else:
            self.repository = gcp.artifactregistry.Repository(
                f"{name}-repo",
                repository_id=IMAGE_NAME,
                location=gcp_settings.region,
                format="DOCKER",
                description="RoboJam service images",
                opts=child,
            )
            host = f"{gcp_settings.region}-docker.pkg.dev"
            tag = self.repository.repository_id.apply(
                lambda repo: f"{host}/{gcp_settings.project}/{repo}/{IMAGE_NAME}:latest"
            )
            # The deployer's own short-lived OAuth token, the documented way to push to Artifact Registry.
            token = gcp.organizations.get_client_config_output(opts=pulumi.InvokeOptions(parent=self)).access_token
            image = _build(f"{name}-build", tag, host, "oauth2accesstoken", token, child, weights)
            self.ref = image.ref
        self.register_outputs({"ref": self.ref})


def docker_login(docker_config_json: str) -> tuple[str, str]:
    """DOCR (username, password) from a Docker config.json (what ContainerRegistryDockerCredentials gives)."""
    auths = json.loads(docker_config_json)["auths"]
    auth = auths.get(DOCR_SERVER) or next(iter(auths.values()))
    username, password = base64.b64decode(auth["auth"]).decode().split(":", 1)
    return username, password


def registry_name_for(account_uuid: str) -> str:
    """A registry name unique to the account: robojam-<first 12 hex digits of its uuid>."""
    return f"{IMAGE_NAME}-{account_uuid.replace('-', '')[:12]}"


def default_registry_name(parent: pulumi.Resource) -> pulumi.Output[str]:
    account = digitalocean.get_account_output(opts=pulumi.InvokeOptions(parent=parent))
    return account.uuid.apply(registry_name_for)


class DoServiceImage(pulumi.ComponentResource):
    """A DigitalOcean Container Registry, the service image pushed to it, and read-only pull credentials."""

    ref: pulumi.Output[str]
    pull_config: pulumi.Output[str] | None  # secret Docker config.json with read-only access, or None

    def __init__(
        self,
        name: str,
        registry_name: str,
        create_registry: bool,
        prebuilt: str = "",
        opts: pulumi.ResourceOptions | None = None,
        weights: ServedWeights | None = None,
        tier: str = "starter",
    ):
        super().__init__("robojam:infra:DoServiceImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        needs_registry = not prebuilt or prebuilt.startswith(f"{DOCR_SERVER}/")
        # Registry names are unique across all DigitalOcean customers: the default derives one from the account.
        registry = pulumi.Output.from_input(registry_name) if registry_name else default_registry_name(self)
        if needs_registry and create_registry:
            created = digitalocean.ContainerRegistry(
                f"{name}-registry", name=registry, subscription_tier_slug=tier, opts=child
            )
            registry = created.name
        self.pull_config = None
        if needs_registry:
            pull = digitalocean.ContainerRegistryDockerCredentials(
                f"{name}-pull",
                registry_name=registry,
                write=False,
                expiry_seconds=REGISTRY_TOKEN_SECONDS,
                opts=child,
            )
            self.pull_config = pulumi.Output.secret(pull.docker_credentials)
        if prebuilt:
            self.ref = pulumi.Output.from_input(prebuilt)
        else:
            push = digitalocean.ContainerRegistryDockerCredentials(
                f"{name}-push",
                registry_name=registry,
                write=True,
                expiry_seconds=REGISTRY_TOKEN_SECONDS,
                opts=child,
            )
            login = pulumi.Output.secret(push.docker_credentials).apply(docker_login)
            tag = registry.apply(lambda reg: f"{DOCR_SERVER}/{reg}/{IMAGE_NAME}:latest")
            image = _build(f"{name}-build", tag, DOCR_SERVER, login[0], login[1], child, weights)
            self.ref = image.ref
            if create_registry:
                _collect_garbage(f"{name}-gc", registry, image, child)
        self.register_outputs({"ref": self.ref})


def _collect_garbage(name: str, registry: pulumi.Input[str], image, opts: pulumi.ResourceOptions) -> None:
    """After each push, free what `latest` no longer names, so the registry holds the running image and, until the
    next collection, the one before it (infra.tables.registry.KEEP_IMAGES), whatever the number of pushes. The
    droplet keeps its previous image locally for a rollback; a collection makes the registry read-only for a
    while, which pulls do not mind."""
    token = pulumi.Config("digitalocean").get_secret("token")  # else the deployer's DIGITALOCEAN_TOKEN
    environment = {"REGISTRY": registry, **({"DIGITALOCEAN_TOKEN": token} if token is not None else {})}
    command.local.Command(
        name,
        create=GC_SCRIPT,
        interpreter=["/bin/sh", "-c"],
        environment=environment,
        triggers=[image.ref],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[image])),
    )
