"""The Google Cloud APIs a stack's resources need, enabled by the stack itself.

A new project has Compute Engine, Kubernetes Engine, Artifact Registry, IAM and Resource Manager disabled, and
the first `pulumi up` would fail with 403 SERVICE_DISABLED. Every GCP resource of the program depends on these
`gcp.projects.Service` resources; `disable_on_destroy=False`, because `pulumi destroy` of one stack must not
switch off an API that other things in the project use. infra/tables/gcp_apis.py maps resource types to APIs,
for the program and for the policy pack.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

# The component's name before it was renamed; kept, since the type is part of every child's URN.
TYPE = "robojam:infra:GcpApis"


class GcpApiServices(pulumi.ComponentResource):
    """One `gcp.projects.Service` per API; `services` is what the stack's resources depend on."""

    def __init__(self, name: str, project: str, apis: list[str], opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE, name, None, opts)
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
