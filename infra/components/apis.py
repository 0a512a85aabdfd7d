"""The Google Cloud APIs a stack's resources need, enabled by the stack itself.

A new project has Compute Engine, Kubernetes Engine, Artifact Registry, IAM and Resource Manager disabled, and
the first `pulumi up` would fail with 403 SERVICE_DISABLED. Every GCP resource of the program depends on these
`gcp.projects.Service` resources; `disable_on_destroy=False`, because `pulumi destroy` of one stack must not
switch off an API that other things in the project use. The policy pack checks the same mapping.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

# Pulumi type module -> the API that serves it ("gcp:compute/instance:Instance" -> module "compute").
API_FOR_MODULE = {
    "compute": "compute.googleapis.com",
    "container": "container.googleapis.com",
    "artifactregistry": "artifactregistry.googleapis.com",
    "serviceaccount": "iam.googleapis.com",
    "projects": "cloudresourcemanager.googleapis.com",  # project IAM bindings
    "storage": "storage.googleapis.com",
}
SERVICE_TYPE = "gcp:projects/service:Service"  # itself served by serviceusage.googleapis.com, on in every project


def api_for(type_token: str) -> str | None:
    """The API a GCP resource type needs, None for what needs none (the Service resource itself)."""
    if not type_token.startswith("gcp:") or type_token == SERVICE_TYPE:
        return None
    module = type_token.split(":", 2)[1].split("/", 1)[0]
    return API_FOR_MODULE.get(module, f"{module}.googleapis.com")


class GcpApis(pulumi.ComponentResource):
    """One `gcp.projects.Service` per API; `services` is what the stack's resources depend on."""

    def __init__(self, name: str, project: str, apis: list[str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("robojam:infra:GcpApis", name, None, opts)
        self.services = [
            gcp.projects.Service(
                f"{name}-{api.split('.', 1)[0]}",
                project=project,
                service=api,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for api in sorted(set(apis))
        ]
        self.register_outputs({})
