"""Which Google Cloud API serves which Pulumi resource type (pure data: the policy pack imports it too)."""

from __future__ import annotations

from infra.tables.resource_types import GCP_CUSTOM_ROLE, GCP_PROJECT_SERVICE

# Pulumi type module -> the API that serves it ("gcp:compute/instance:Instance" -> module "compute").
API_FOR_MODULE = {
    "compute": "compute.googleapis.com",
    "container": "container.googleapis.com",
    "artifactregistry": "artifactregistry.googleapis.com",
    "serviceaccount": "iam.googleapis.com",
    "projects": "cloudresourcemanager.googleapis.com",  # project IAM bindings
    "storage": "storage.googleapis.com",
    "cloudrunv2": "run.googleapis.com",
}
# Types served by another API than their module's.
API_FOR_TYPE = {GCP_CUSTOM_ROLE: "iam.googleapis.com"}  # custom roles are the IAM API's (projects.roles)


def api_for(type_token: str) -> str | None:
    """The API a GCP resource type needs, None for what needs none (the Service resource itself)."""
    if not type_token.startswith("gcp:") or type_token == GCP_PROJECT_SERVICE:
        return None
    if type_token in API_FOR_TYPE:
        return API_FOR_TYPE[type_token]
    module = type_token.split(":", 2)[1].split("/", 1)[0]
    return API_FOR_MODULE.get(module, f"{module}.googleapis.com")
