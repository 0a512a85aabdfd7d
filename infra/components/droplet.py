"""The droplet service: one small DigitalOcean droplet running the service image under systemd.

Cloud-init installs Docker from the distribution, pulls with read-only registry credentials and runs the
container with restart on failure; with a domain, Caddy in front gets certificates automatically. The cloud
firewall lets in web traffic from anywhere and SSH only from configured CIDRs.
"""

from __future__ import annotations

import pulumi
import pulumi_digitalocean as digitalocean

from infra.components.image import CONTAINER_PORT, SERVICE_UID
from infra.config import DropletSettings
from infra.render import render

DROPLET_IMAGE = "ubuntu-24-04-x64"
ANYWHERE = ["0.0.0.0/0", "::/0"]


def cloud_config(image_ref: str, docker_config: str, settings: DropletSettings) -> str:
    """The droplet's #cloud-config user-data."""
    return render(
        "droplet-cloud-config.yaml.j2",
        image=image_ref,
        docker_config=docker_config or "",
        domain=settings.domain,
        acme_email=settings.acme_email,
        uid=SERVICE_UID,
        port=CONTAINER_PORT,
        publish=f"127.0.0.1:{CONTAINER_PORT}" if settings.domain else "80",  # behind Caddy, or straight on port 80
    )


class DropletService(pulumi.ComponentResource):
    """Droplet, cloud firewall and optional reserved IP serving `image_ref`."""

    def __init__(
        self,
        name: str,
        settings: DropletSettings,
        image_ref: pulumi.Input[str],
        pull_config: pulumi.Input[str] | None,
        stack: str,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("robojam:infra:DropletService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # The pull credentials make the whole user-data secret (Output.all keeps secretness).
        user_data = pulumi.Output.all(image_ref, pull_config or "").apply(
            lambda args: cloud_config(args[0], args[1], settings)
        )
        self.droplet = digitalocean.Droplet(
            f"{name}-droplet",
            name=f"robojam-{stack}",
            image=DROPLET_IMAGE,
            region=settings.region,
            size=settings.size,
            ssh_keys=list(settings.ssh_keys),  # keys only: DigitalOcean sets no root password when keys are given
            monitoring=True,
            ipv6=True,
            user_data=user_data,
            tags=["robojam"],
            opts=child,
        )

        inbound = [
            digitalocean.FirewallInboundRuleArgs(protocol="tcp", port_range=port, source_addresses=ANYWHERE)
            for port in ("80", "443")
        ]
        if settings.ssh_cidrs:
            inbound.append(
                digitalocean.FirewallInboundRuleArgs(
                    protocol="tcp", port_range="22", source_addresses=list(settings.ssh_cidrs)
                )
            )
        outbound = [
            digitalocean.FirewallOutboundRuleArgs(protocol=protocol, port_range=ports, destination_addresses=ANYWHERE)
            for protocol, ports in (("tcp", "1-65535"), ("udp", "1-65535"), ("icmp", None))
        ]
        digitalocean.Firewall(
            f"{name}-firewall",
            name=f"robojam-{stack}",
            droplet_ids=[self.droplet.id.apply(int)],
            inbound_rules=inbound,
            outbound_rules=outbound,
            opts=child,
        )

        self.ip = self.droplet.ipv4_address
        if settings.reserved_ip:
            reserved = digitalocean.ReservedIp(f"{name}-ip", region=settings.region, opts=child)
            digitalocean.ReservedIpAssignment(
                f"{name}-ip-assignment",
                ip_address=reserved.ip_address,
                droplet_id=self.droplet.id.apply(int),
                opts=child,
            )
            self.ip = reserved.ip_address
        if settings.domain:
            self.url = pulumi.Output.from_input(f"https://{settings.domain}")
        else:
            self.url = self.ip.apply(lambda ip: f"http://{ip}")
        self.ssh_command = self.ip.apply(lambda ip: f"ssh root@{ip}")
        self.register_outputs({"url": self.url, "ip": self.ip})
