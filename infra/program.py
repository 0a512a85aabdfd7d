"""The program: validate the stack's config, then build the selected target and export what operators need."""

from __future__ import annotations

import pulumi

from infra import config
from infra.components.apis import GcpApis
from infra.components.droplet import DropletService
from infra.components.gke import GkeService
from infra.components.gpu_vm import GpuTrainingVm
from infra.components.image import DoServiceImage, GcpServiceImage

SSH_CLOSED = "SSH is closed: list your CIDRs in robojam:sshCidrs and run `pulumi up` to open it."
GPU_QUOTA = (
    "A new project's GPU quota is 0: request GPUS_ALL_REGIONS >= {count} (IAM & Admin > Quotas) and the "
    "regional {gpu} quota in {region} before the first run, or the VM is refused."
)
# What each GCP target's resources need enabled on a fresh project (the policy pack checks the mapping).
GPU_VM_APIS = ["compute.googleapis.com", "iam.googleapis.com", "storage.googleapis.com"]
GKE_APIS = [
    "compute.googleapis.com",
    "container.googleapis.com",
    "iam.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "artifactregistry.googleapis.com",
]


def main() -> None:
    """Entry point (called by infra/__main__.py and, under mocks, by infra.mock_plan.plan_stack)."""
    cfg = config.load()  # raises ConfigError before any resource exists
    pulumi.export("target", cfg.target)
    {"gpu-vm": _gpu_vm, "droplet": _droplet, "gke": _gke}[cfg.target](cfg)


def _gpu_vm(cfg: config.StackConfig) -> None:
    settings = cfg.gpu_vm
    apis = GcpApis("apis", cfg.gcp.project, GPU_VM_APIS)
    vm = GpuTrainingVm("train", cfg.gcp, settings, stack=cfg.stack, depends_on=apis.services)
    pulumi.export("bucket", vm.bucket.url)
    pulumi.export("weights_uri", vm.weights_uri)
    pulumi.export("ssh_command", vm.ssh_command if settings.ssh_cidrs else SSH_CLOSED)
    pulumi.export("jupyter_tunnel", vm.jupyter_tunnel if settings.ssh_cidrs else SSH_CLOSED)
    pulumi.export("progress_command", vm.progress_command)
    pulumi.export(
        "next_steps",
        vm.weights_uri.apply(
            lambda uri: (
                GPU_QUOTA.format(count=settings.gpu_count, gpu=settings.gpu_type, region=cfg.gcp.region)
                + " Training runs at boot and "
                + (
                    "the VM stays up for JupyterLab (`pulumi stack output jupyter_tunnel`)"
                    if settings.interactive
                    else "powers the VM off when done"
                )
                + f" (hard limit {settings.max_run_hours:g} h, then {settings.termination_action}). Follow it "
                f"with `pulumi stack output progress_command`; then fetch the weights: "
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
    pulumi.export("ssh_command", service.ssh_command)
    pulumi.export("metrics_tunnel", service.metrics_tunnel)
    dns = (
        f"Point an A record for {settings.domain} at the ip output; Caddy then fetches the certificate. "
        if settings.domain
        else ""
    )
    pulumi.export(
        "next_steps",
        service.url.apply(
            lambda url: (
                f"{dns}`pulumi up` waits for cloud-init and rolls the image out over SSH; check {url}/healthz "
                f"and POST performances to {url}/api/predict. The next image replaces the container, not the "
                f"droplet."
            )
        ),
    )


def _gke(cfg: config.StackConfig) -> None:
    apis = GcpApis("apis", cfg.gcp.project, GKE_APIS if not cfg.image else [a for a in GKE_APIS if "artifact" not in a])
    image = GcpServiceImage("image", cfg.gcp, prebuilt=cfg.image, depends_on=apis.services)
    service = GkeService(
        "gke", cfg.gcp, cfg.gke, image.ref, image.repository, stack=cfg.stack, depends_on=apis.services
    )
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
