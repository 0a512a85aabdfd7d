"""A VPC of the stack's own with one subnet: no project-wide default firewall rule applies to what runs in it."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp


def private_network(
    name: str, description: str, region: str, cidr: str, opts: pulumi.ResourceOptions
) -> tuple[gcp.compute.Network, gcp.compute.Subnetwork]:
    """`{name}-net` (no automatic subnets) and `{name}-subnet` (`cidr` in `region`, Google APIs privately)."""
    network = gcp.compute.Network(f"{name}-net", auto_create_subnetworks=False, description=description, opts=opts)
    subnet = gcp.compute.Subnetwork(
        f"{name}-subnet",
        network=network.id,
        region=region,
        ip_cidr_range=cidr,
        private_ip_google_access=True,
        opts=opts,
    )
    return network, subnet
