"""The program: validate the stack's config, then build the selected target and export what operators need."""

from __future__ import annotations

import pulumi

from infra import config
from infra.components.droplet import DropletService
from infra.components.gke import GkeService
from infra.components.gpu_vm import GpuTrainingVm
from infra.components.image import DoServiceImage, GcpServiceImage

SSH_CLOSED = "SSH is closed: list your CIDRs in robojam:sshCidrs and run `pulumi up` to open it."


def main() -> None:
    """Entry point (called by infra/__main__.py and, under mocks, by infra.mock_plan.plan_stack)."""
    cfg = config.load()  # raises ConfigError before any resource exists
    pulumi.export("target", cfg.target)
    {"gpu-vm": _gpu_vm, "droplet": _droplet, "gke": _gke}[cfg.target](cfg)


def _gpu_vm(cfg: config.StackConfig) -> None:
    settings = cfg.gpu_vm
    vm = GpuTrainingVm("train", cfg.gcp, settings, stack=cfg.stack)
    pulumi.export("bucket", vm.bucket.url)
    pulumi.export("weights_uri", vm.weights_uri)
    pulumi.export("ssh_command", vm.ssh_command if settings.ssh_cidrs else SSH_CLOSED)
    pulumi.export("jupyter_tunnel", vm.jupyter_tunnel if settings.ssh_cidrs else SSH_CLOSED)
    pulumi.export("progress_command", vm.progress_command)
    pulumi.export(
        "next_steps",
        vm.weights_uri.apply(
            lambda uri: (
                f"Training runs at boot and powers the VM off when done (hard limit "
                f"{settings.max_run_hours:g} h, then {settings.termination_action}). Follow it with "
                f"`pulumi stack output progress_command`; then fetch the weights: "
                f"gcloud storage cp {uri} model/weights/"
            )
        ),
    )


def _droplet(cfg: config.StackConfig) -> None:
    settings = cfg.droplet
    image = DoServiceImage("image", settings.registry_name, settings.create_registry, prebuilt=cfg.image)
    service = DropletService("web", settings, image.ref, image.pull_config, stack=cfg.stack)
    pulumi.export("url", service.url)
    pulumi.export("ip", service.ip)
    pulumi.export("image", image.ref)
    pulumi.export("ssh_command", service.ssh_command if settings.ssh_cidrs else SSH_CLOSED)
    dns = (
        f"Point an A record for {settings.domain} at the ip output; Caddy then fetches the certificate. "
        if settings.domain
        else ""
    )
    pulumi.export(
        "next_steps",
        service.url.apply(
            lambda url: (
                f"{dns}Cloud-init needs a few minutes after `pulumi up`; then check {url}/healthz and "
                f"POST performances to {url}/api/predict."
            )
        ),
    )


def _gke(cfg: config.StackConfig) -> None:
    image = GcpServiceImage("image", cfg.gcp, prebuilt=cfg.image)
    service = GkeService("gke", cfg.gcp, cfg.gke, image.ref, image.repository, stack=cfg.stack)
    pulumi.export("url", service.url)
    pulumi.export("image", image.ref)
    pulumi.export("cluster", service.cluster.name)
    pulumi.export("credentials_command", service.credentials_command)
    pulumi.export(
        "next_steps",
        (
            f"Run `{service.credentials_command}`, then `kubectl -n robojam get pods,svc,hpa`; the url "
            "output appears once the load balancer has an address (`pulumi refresh` fills it in)."
        ),
    )
