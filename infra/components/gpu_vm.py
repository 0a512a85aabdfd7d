"""The GPU training VM: a Compute Engine VM that trains once from a bucket's corpus and powers itself off.

It gets its own VPC (so no project-wide default firewall rule applies), SSH only from configured CIDRs,
a service account that can touch only its bucket, and a hard run limit so a forgotten VM stops costing money.
The run's state (its backup after every epoch, its status markers) lives in the bucket, and a restarter
(infra/components/restarter.py) starts the VM again after a preemption until the run is done or capped.
"""

from __future__ import annotations

import hashlib
import pathlib
from typing import TYPE_CHECKING

import pulumi
import pulumi_gcp as gcp

from infra.components.network import private_network
from infra.components.restarter import RestartCaps, TrainingRestarter
from infra.render import render
from robojam_format.layout import REPO_ROOT

if TYPE_CHECKING:
    from infra.config import GcpSettings
    from infra.targets.gpu_vm import GpuVmSettings

DLVM_PROJECT = "deeplearning-platform-release"
NETWORK_TAG = "robojam-train"
SOURCE_OBJECT = "source/robojam-src.zip"
# Our JupyterLab (interactive mode), bound to 127.0.0.1; the Deep Learning VM image's own Jupyter is on 8080.
JUPYTER_PORT = 8888


# pyproject.toml names a readme; the repository's README is documentation, not a training input, so the archive
# holds this fixed one instead and a README edit never replaces the VM (a new GPU run).
README_STANDIN = "RoboJam training source: what the GPU VM installs and trains with (see the repository's README).\n"
TRAINING_PACKAGES = ("model", "robojam_format")


def source_archive() -> pulumi.AssetArchive:
    """What training reads on the VM, and nothing else: pyproject.toml (for `pip install '.[train-gpu]'`) and the
    Python modules of the model and of the contract it uses. Docs, notebooks, tests, infra and staging stay out, so
    editing them leaves the plan unchanged."""
    files = {
        "pyproject.toml": pulumi.FileAsset(str(REPO_ROOT / "pyproject.toml")),
        "README.md": pulumi.StringAsset(README_STANDIN),
    }
    for path in sorted(p for package in TRAINING_PACKAGES for p in (REPO_ROOT / package).rglob("*.py")):
        if "__pycache__" not in path.parts:
            files[path.relative_to(REPO_ROOT).as_posix()] = pulumi.FileAsset(str(path))
    return pulumi.AssetArchive(files)


def _asset_bytes(asset) -> bytes:
    return asset.text.encode() if isinstance(asset, pulumi.StringAsset) else pathlib.Path(asset.path).read_bytes()


def inputs_digest(corpus: pathlib.Path) -> str:
    """sha256 over the corpus file and every file of the source archive: what one training run consumes."""
    digest = hashlib.sha256(corpus.read_bytes())
    for name, asset in sorted(source_archive().assets.items()):
        digest.update(name.encode() + b"\0" + _asset_bytes(asset))
    return digest.hexdigest()


def run_id(run_name: str, inputs: str) -> str:
    """One run: its name and its inputs' digest (a new corpus or source under the same name is a new run)."""
    return f"{run_name}-{inputs[:12]}"


class GpuTrainingVm(pulumi.ComponentResource):
    """Bucket, service account, network, firewall and the VM whose startup script runs one training job."""

    def __init__(
        self,
        name: str,
        gcp_settings: GcpSettings,
        settings: GpuVmSettings,
        stack: str,
        depends_on: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("robojam:infra:GpuTrainingVm", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on or [])
        project, zone = gcp_settings.project, gcp_settings.zone

        self.bucket = gcp.storage.Bucket(
            f"{name}-bucket",
            name=f"{project}-robojam-{stack}",
            location=gcp_settings.region.upper(),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=False,  # trained weights live here: `pulumi destroy` refuses until they are copied
            opts=child,
        )
        corpus_object = f"corpus/{settings.corpus_path.name}"
        corpus = gcp.storage.BucketObject(
            f"{name}-corpus",
            bucket=self.bucket.name,
            name=corpus_object,
            source=pulumi.FileAsset(str(settings.corpus_path)),
            opts=child,
        )
        source = gcp.storage.BucketObject(
            f"{name}-source", bucket=self.bucket.name, name=SOURCE_OBJECT, source=source_archive(), opts=child
        )

        self.service_account = gcp.serviceaccount.Account(
            f"{name}-sa",
            account_id=f"robojam-train-{stack}"[:30],
            display_name="RoboJam training VM",
            description="Reads the corpus and writes runs/weights in its own bucket; nothing else.",
            opts=child,
        )
        # Bucket-scoped, not project-wide: the VM can read and write objects in this bucket only.
        access = gcp.storage.BucketIAMMember(
            f"{name}-bucket-access",
            bucket=self.bucket.name,
            role="roles/storage.objectUser",
            member=self.service_account.email.apply(lambda email: f"serviceAccount:{email}"),
            opts=child,
        )

        network, subnet = private_network(
            name, "RoboJam training VM network", gcp_settings.region, "10.20.0.0/24", child
        )
        if settings.ssh_cidrs:
            gcp.compute.Firewall(
                f"{name}-ssh",
                network=network.id,
                direction="INGRESS",
                allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=["22"])],
                source_ranges=list(settings.ssh_cidrs),
                target_tags=[NETWORK_TAG],
                description="SSH (and the Jupyter tunnel through it) from the configured CIDRs only",
                opts=child,
            )

        # A changed corpus or source is a new run: the digest is in the startup script, whose change replaces
        # the VM (replace_on_changes says so explicitly; the provider forces it too), and the new VM trains again.
        inputs = inputs_digest(settings.corpus_path)
        self.run_id = run_id(settings.run_name, inputs)
        startup = self.bucket.name.apply(
            lambda bucket: render(
                "train-startup.sh.j2",
                bucket=bucket,
                run_name=settings.run_name,
                run_id=self.run_id,
                max_total_seconds=int(settings.max_total_hours * 3600),
                corpus_object=corpus_object,
                source_object=SOURCE_OBJECT,
                epochs=settings.epochs,
                interactive="true" if settings.interactive else "false",
                jupyter_port=JUPYTER_PORT,
                inputs_sha256=inputs,
            )
        )
        self.instance = gcp.compute.Instance(
            f"{name}-vm",
            name=f"robojam-{stack}",
            zone=zone,
            machine_type=settings.machine_type,
            boot_disk=gcp.compute.InstanceBootDiskArgs(
                initialize_params=gcp.compute.InstanceBootDiskInitializeParamsArgs(
                    image=f"projects/{DLVM_PROJECT}/global/images/family/{settings.image_family}",
                    size=settings.boot_disk_gb,
                    type="pd-balanced",
                ),
            ),
            guest_accelerators=[
                gcp.compute.InstanceGuestAcceleratorArgs(type=settings.gpu_type, count=settings.gpu_count)
            ],
            scheduling=gcp.compute.InstanceSchedulingArgs(
                on_host_maintenance="TERMINATE",  # GPUs cannot live-migrate
                automatic_restart=not settings.spot,
                preemptible=settings.spot,
                provisioning_model="SPOT" if settings.spot else "STANDARD",
                instance_termination_action=settings.termination_action,
                max_run_duration=gcp.compute.InstanceSchedulingMaxRunDurationArgs(
                    seconds=int(settings.max_run_hours * 3600)
                ),
            ),
            metadata={"install-nvidia-driver": "True", "enable-oslogin": "TRUE"},
            metadata_startup_script=startup,
            service_account=gcp.compute.InstanceServiceAccountArgs(
                email=self.service_account.email,
                scopes=["https://www.googleapis.com/auth/cloud-platform"],  # IAM above is what limits it
            ),
            network_interfaces=[
                gcp.compute.InstanceNetworkInterfaceArgs(
                    subnetwork=subnet.id,
                    access_configs=[gcp.compute.InstanceNetworkInterfaceAccessConfigArgs()],  # egress for pip
                )
            ],
            tags=[NETWORK_TAG],
            allow_stopping_for_update=True,
            labels={"app": "robojam", "stack": stack, "inputs": inputs[:16]},
            # The script's first `gcloud storage cp` needs its bucket access, the corpus and the source in place.
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[access, corpus, source], replace_on_changes=["metadataStartupScript"]
                ),
            ),
        )

        self.restarter = TrainingRestarter(
            f"{name}-restarter",
            project=project,
            region=gcp_settings.region,
            zone=zone,
            stack=stack,
            instance=self.instance,
            bucket=self.bucket,
            run_id=self.run_id,
            caps=RestartCaps(settings.max_restarts, int(settings.max_total_hours * 3600)),
            depends_on=depends_on,
            opts=pulumi.ResourceOptions(parent=self),
        )

        where = f"--zone {zone} --project {project}"
        vm = f"robojam-{stack}"
        self.ssh_command = f"gcloud compute ssh {vm} {where}"
        if settings.interactive:
            self.jupyter_tunnel = f"{self.ssh_command} -- -L {JUPYTER_PORT}:127.0.0.1:{JUPYTER_PORT}"
        else:
            self.jupyter_tunnel = (
                "JupyterLab runs only in interactive mode: pulumi config set robojam:interactive true."
            )
        self.weights_uri = self.bucket.name.apply(lambda b: f"gs://{b}/weights/{settings.run_name}.npz")
        self.progress_command = f"gcloud compute instances get-serial-port-output {vm} {where}"
        self.register_outputs({"bucket": self.bucket.name, "weights_uri": self.weights_uri})
