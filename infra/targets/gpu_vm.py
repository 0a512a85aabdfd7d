"""The gpu-vm target: one Compute Engine VM that trains the model from a bucket's corpus and powers itself off."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from infra.components.api_services import GcpApiServices
from infra.components.gpu_vm import GpuTrainingVm
from infra.components.restarter import TrainingRestarter
from infra.config import (
    GCE_MACHINE,
    GCP_KEYS,
    SSH_CIDRS,
    ConfigError,
    Key,
    boolean,
    choice,
    existing_file,
    int_choice,
    integer,
    not_above,
    number,
    pattern,
)
from infra.tables import resource_types as types
from infra.tables.gpus import GPU_TYPES, gpu_problem
from infra.tables.training_caps import MAX_RESTARTS_LIMIT, MAX_RUN_HOURS_LIMIT
from infra.targets.target import Target

GPU_COUNTS = (1, 2, 4, 8)
TERMINATION_ACTIONS = ("STOP", "DELETE")
# What the VM's resources need enabled on a fresh project (the policy pack checks the mapping).
APIS = [
    "compute.googleapis.com",
    "iam.googleapis.com",
    "storage.googleapis.com",
    "run.googleapis.com",  # the restarter's job
    "cloudscheduler.googleapis.com",  # and its schedule
]
SSH_CLOSED = "SSH is closed: list your CIDRs in robojam:sshCidrs and run `pulumi up` to open it."
GPU_QUOTA = (
    "A new project's GPU quota is 0: request GPUS_ALL_REGIONS >= {count} (IAM & Admin > Quotas) and the "
    "regional {gpu} quota in {region} before the first run, or the VM is refused."
)

KEYS = (
    SSH_CIDRS,
    *GCP_KEYS,
    Key(
        "robojam:machineType",
        "machine_type",
        "n1-standard-4",
        "VM machine type (must fit the GPU: N1 for T4/P4/V100/P100, G2 for L4, A2 for A100)",
        pattern(GCE_MACHINE, "a Compute Engine machine type such as n1-standard-4"),
    ),
    Key("robojam:gpuType", "gpu_type", "nvidia-tesla-t4", "GPU type: " + ", ".join(GPU_TYPES), choice(GPU_TYPES)),
    Key(
        "robojam:gpuCount",
        "gpu_count",
        1,
        "GPUs attached: 1, 2, 4 or 8, as the GPU allows (N1: T4/P4/P100 1, 2 or 4, V100 up to 8; G2/A2 types "
        "come with a fixed count, e.g. `g2-standard-8` one L4)",
        int_choice(GPU_COUNTS),
    ),
    Key(
        "robojam:imageFamily",
        "image_family",
        "common-cu128-ubuntu-2204-nvidia-570",
        "Deep Learning VM image family (`deeplearning-platform-release`)",
        pattern(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$", "an image family name"),
    ),
    Key(
        "robojam:bootDiskGb",
        "boot_disk_gb",
        100,
        "boot disk size in GB, at least 50",
        integer(low=50, high=2000),
    ),
    Key("robojam:spot", "spot", False, "Spot provisioning: cheaper, may be preempted", boolean),
    Key(
        "robojam:maxRunHours",
        "max_run_hours",
        6,
        f"hard run limit in hours (at most {MAX_RUN_HOURS_LIMIT})",
        number("a number of hours", above=0, at_most=MAX_RUN_HOURS_LIMIT),
    ),
    Key(
        "robojam:maxRestarts",
        "max_restarts",
        3,
        "times the restarter starts the VM again after a preemption or another stop that left the run unfinished "
        f"(at most {MAX_RESTARTS_LIMIT}; 0: never)",
        integer(low=0, high=MAX_RESTARTS_LIMIT),
    ),
    Key(
        "robojam:maxTotalHours",
        "max_total_hours",
        24,
        "the run's total time from its first boot, restarts and waits included: past it the VM stops training and "
        f"is never started again (at least robojam:maxRunHours, at most {MAX_RUN_HOURS_LIMIT})",
        number("a number of hours", above=0, at_most=MAX_RUN_HOURS_LIMIT),
    ),
    Key(
        "robojam:terminationAction",
        "termination_action",
        "STOP",
        "what the run limit does: `STOP` or `DELETE`",
        choice(TERMINATION_ACTIONS, convert=lambda raw: raw.strip().upper()),
    ),
    Key(
        "robojam:corpusPath",
        "corpus_path",
        None,
        "local corpus file to upload (relative paths: from the repo root)",
        existing_file,
    ),
    Key(
        "robojam:runName",
        "run_name",
        "gpu",
        "names `runs/NAME` and `weights/NAME.npz`",
        pattern(r"^[a-z0-9][a-z0-9_-]{0,62}$", "lowercase letters, digits, '-' or '_'"),
    ),
    Key("robojam:epochs", "epochs", 100, "training epochs (early stopping may end sooner)", integer(low=1)),
    Key(
        "robojam:interactive",
        "interactive",
        False,
        "JupyterLab on 127.0.0.1:8888 from the project's venv; the VM stays up after training until maxRunHours",
        boolean,
    ),
)


@dataclass(frozen=True)
class GpuVmSettings:
    machine_type: str
    gpu_type: str
    gpu_count: int
    image_family: str
    boot_disk_gb: int
    spot: bool
    max_run_hours: float
    max_restarts: int
    max_total_hours: float
    termination_action: str
    corpus_path: pathlib.Path
    run_name: str
    epochs: int
    ssh_cidrs: tuple[str, ...]
    interactive: bool = False


def check(v: dict, key: Mapping[str, str]) -> None:
    """The cloud's own GPU rules (infra/tables/gpus.py): type, count, machine type and zone must fit."""
    problem = gpu_problem(v["gpu_type"], v["gpu_count"], v["machine_type"], v["zone"])
    if problem:
        setting, sentence = problem
        raise ConfigError(f"{key[setting]} {sentence}.")
    not_above(v, key, "max_run_hours", "max_total_hours")


def build(cfg) -> None:
    """The APIs, the training VM with its bucket, and how to follow and fetch the run."""
    settings = cfg.settings
    apis = GcpApiServices("apis", cfg.gcp.project, APIS)
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


TARGET = Target(
    name="gpu-vm",
    keys=KEYS,
    settings=GpuVmSettings,
    check=check,
    build=build,
    cloud="gcp",
    serves=False,
    components=(GcpApiServices, GpuTrainingVm, TrainingRestarter),
    billed_type=types.GCP_INSTANCE,
    catalogue_kinds=("machine", "gpu", "disk", "ip", "bucket-storage"),
    staging_steps=("training",),
)
