"""Step 2: the training VM's rendered startup script, three boots, in a sandbox with stand-in cloud tools.

The script runs as the VM runs it (bash, as root) but in a private mount namespace whose /opt and /var are
overlays with their writes in the sandbox folder, so /opt/robojam, /var/lib/robojam and /var/log stay there.
On PATH first: the test doubles in tests/standins (gcloud with a local folder as the bucket, nvidia-smi,
shutdown, uv). `pip install 'uv...'` finds a wheel of the uv stand-in (no index); the venv it makes uses the
local Python with the CPU train extra already installed. The corpus is a tiny slice of $ROBOJAM_DATA, 1 epoch.

Boots: (1) trains and is killed with its whole "VM" (SIGKILL, a simulated preemption) once the bucket holds a
completed epoch's backup; (2) the same VM again: restores the run from the bucket, resumes after that epoch (the
log says which), finishes, uploads runs/NAME/, weights/NAME.npz and the log, marks the run done in the bucket and
calls shutdown; (3) the same VM again: does not retrain; (4) a fresh VM whose corpus is broken: training fails,
the log is still uploaded, the bucket's `failed` marker is written and shutdown is still called.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import numpy as np

from infra.mock_plan import plan_stack
from infra.tables import resource_types as types
from robojam_format import artifact as weights
from robojam_format.layout import REPO_ROOT
from staging.context import Context
from staging.errors import StagingError

STACK = "train"
INSTANCE = types.GCP_INSTANCE
BUCKET = types.GCP_BUCKET
BUCKET_OBJECT = types.GCP_BUCKET_OBJECT
STANDINS = REPO_ROOT / "tests" / "standins"
UV_STANDIN_VERSION = "0.9.999"  # inside the script's `uv>=0.4,<1`
RUN_NAME = "staging"
PERFORMANCES = 40  # the slice of the corpus: enough for a train/validation split, seconds per epoch
BOOT_TIMEOUT = 900
EPOCHS = 3  # the first boot is killed after one, the second resumes and finishes
OVERLAID = ("/opt", "/var")  # where the script writes (WORKDIR, the done marker, the log)


def corpus_dir() -> Path:
    path = Path(os.environ.get("ROBOJAM_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not (path / "TinyPerformanceCorpus.h5").is_file():
        raise StagingError(f"the MicroJam corpus is not in {path} (set ROBOJAM_DATA).")
    return path


def corpus_slice(path: Path, broken: bool = False) -> Path:
    """The first PERFORMANCES performances of the corpus as an events/offsets .npz (broken: no offsets)."""
    import h5py  # the train extra

    with h5py.File(corpus_dir() / "TinyPerformanceCorpus.h5", "r") as f:
        events = np.asarray(f["total_performances"], dtype=np.float32)
    starts = np.flatnonzero(events[:, 2] == 0.0)
    end = starts[PERFORMANCES] if len(starts) > PERFORMANCES else len(events)
    offsets = np.append(starts[starts < end], end).astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.savez(f, events=events[:end], **({} if broken else {"offsets": offsets}))
    return path


def uv_wheel(folder: Path) -> Path:
    """A wheel named uv whose only script is the uv stand-in, so `pip install 'uv>=0.4,<1'` installs the double."""
    name = f"uv-{UV_STANDIN_VERSION}"
    script = (STANDINS / "uv").read_bytes()
    files = {
        f"{name}.data/scripts/uv": script,
        f"{name}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: uv\nVersion: {UV_STANDIN_VERSION}\n".encode(),
        f"{name}.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for path, data in files.items()
    ]
    files[f"{name}.dist-info/RECORD"] = ("\n".join([*record, f"{name}.dist-info/RECORD,,"]) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            info = zipfile.ZipInfo(path)
            info.external_attr = 0o100755 << 16  # a regular file, executable
            zf.writestr(info, data)
    return wheel


def fill_bucket(plan, root: Path) -> str:
    """The bucket as the program fills it: every BucketObject's file or archive (a zip), under root/BUCKET/."""
    bucket = plan.one(BUCKET).inputs["name"]
    for obj in plan.of_type(BUCKET_OBJECT):
        target = root / bucket / obj.inputs["name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        source = obj.inputs["source"]
        if hasattr(source, "assets"):
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, asset in sorted(source.assets.items()):
                    if hasattr(asset, "text"):  # a StringAsset (the archive's stand-in README)
                        zf.writestr(name, asset.text)
                    else:
                        zf.write(asset.path, name)
        else:
            shutil.copyfile(source.path, target)
    return bucket


class Vm:
    """One VM's disk (the overlays' upper layers) and its bucket, in a sandbox folder."""

    def __init__(self, ctx: Context, name: str, broken_corpus: bool = False):
        self.ctx = ctx
        self.root = ctx.build_dir / "training" / name
        shutil.rmtree(self.root, ignore_errors=True)
        self.calls = self.root / "calls.log"
        self.buckets = self.root / "buckets"
        corpus = corpus_slice(self.root / "corpus" / "microjam-slice.npz", broken=broken_corpus)
        plan = plan_stack(
            STACK, {"robojam:corpusPath": str(corpus), "robojam:epochs": EPOCHS, "robojam:runName": RUN_NAME}
        )
        self.script = self.root / "startup.sh"
        self.script.write_text(plan.one(INSTANCE).inputs["metadataStartupScript"])
        job = plan.one(types.GCP_RUN_JOB).inputs["template"]["template"]["containers"][0]
        self.status = next(e["value"] for e in job["envs"] if e["name"] == "STATUS_URI")  # gs://BUCKET/status/ID
        self.bucket = fill_bucket(plan, self.buckets)
        self.wheels = self.root / "wheels"
        uv_wheel(self.wheels)

    def disk(self, path: str) -> Path:
        """Where the VM's `path` (under /opt or /var) was written."""
        top = next(p for p in OVERLAID if path == p or path.startswith(p + "/"))
        return self.root / "upper" / top.strip("/") / path[len(top) :].lstrip("/")

    def boot(self, log: Path, kill_when=None) -> int:
        """Run the startup script once, as root, in a private mount namespace; its exit status. With `kill_when`,
        the boot and everything it started is killed (SIGKILL: a preemption) as soon as `kill_when()` is true."""
        mounts = []
        for top in OVERLAID:
            upper, work = self.root / "upper" / top.strip("/"), self.root / "work" / top.strip("/")
            upper.mkdir(parents=True, exist_ok=True)
            work.mkdir(parents=True, exist_ok=True)
            mounts.append(f"mount -t overlay overlay -o lowerdir={top},upperdir={upper},workdir={work} {top}")
        inner = " && ".join([*mounts, f"exec bash {self.script}"])
        env = {
            **os.environ,
            "PATH": f"{STANDINS}{os.pathsep}{os.environ['PATH']}",
            "STAGING_CALLS": str(self.calls),
            "STAGING_BUCKETS": str(self.buckets),
            "STAGING_PYTHON": sys.executable,
            "STAGING_INSTANCES": str(self.root / "instances"),
            "ROBOJAM_METADATA": "http://127.0.0.1:9",  # no metadata server: curl fails at once, "not preempted"
            "STAGING_TRAIN_SITE": sysconfig.get_paths()["purelib"],
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(self.wheels),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        with log.open("a") as out:
            out.write(f"--- boot of {self.root.name} ---\n")
            out.flush()
            boot = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "bash", "-c", inner],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            deadline = time.monotonic() + BOOT_TIMEOUT
            while boot.poll() is None:
                if time.monotonic() > deadline or (kill_when is not None and kill_when()):
                    os.killpg(boot.pid, signal.SIGKILL)
                    boot.wait()
                    return -signal.SIGKILL
                time.sleep(0.5)
        return boot.returncode

    def bucket_path(self, uri: str) -> Path:
        return self.buckets / uri.removeprefix("gs://")

    def objects(self) -> list[str]:
        base = self.buckets / self.bucket
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())

    def shutdowns(self) -> int:
        return (
            sum(line.startswith("shutdown ") for line in self.calls.read_text().splitlines())
            if self.calls.exists()
            else 0
        )


def run(ctx: Context) -> tuple[str, dict]:
    if os.geteuid() != 0:
        raise StagingError(
            "the training step runs the startup script as root (it does on the VM) in a mount namespace."
        )
    log = ctx.path("logs") / "training-vm.log"
    log.write_text("")
    ctx.log(f"the VMs' console output: {log}")
    vm = Vm(ctx, "vm")
    pointer = vm.bucket_path(f"gs://{vm.bucket}/runs/{RUN_NAME}/backup/LATEST")
    start = time.monotonic()
    synced = vm.bucket_path(vm.status) / "synced"  # push-run.sh writes it after its first complete copy
    status = vm.boot(log, kill_when=synced.is_file)
    if status != -signal.SIGKILL:
        raise StagingError(f"the first boot ended (exit {status}) before a completed epoch reached the bucket.")
    saved = pointer.read_text().strip()
    ctx.log(f"boot 1 killed after the bucket got backup {saved} (a simulated preemption)")
    if vm.shutdowns() != 0 or any(vm.bucket_path(vm.status).glob("done")):
        raise StagingError("the killed boot powered off or marked the run done.")
    text_before = log.read_text()
    status = vm.boot(log)
    seconds = time.monotonic() - start
    second = log.read_text()[len(text_before) :]
    objects = vm.objects()
    ctx.log(f"boot 2 exit {status}; bucket: {objects}")
    if status != 0:
        raise StagingError(f"the startup script exited {status} on the second boot (see {log}).")
    resumed = [line for line in second.splitlines() if line.startswith("resuming from epoch ")]
    done_epochs = int(saved.rsplit("-", 1)[1])
    if not resumed or not resumed[0].startswith(f"resuming from epoch {done_epochs + 1}:"):
        raise StagingError(f"the second boot did not resume after epoch {done_epochs}: {resumed or 'no resume line'}")
    expected = [f"weights/{RUN_NAME}.npz", f"runs/{RUN_NAME}/best.keras", f"runs/{RUN_NAME}/summary.json"]
    missing = [name for name in expected if name not in objects]
    logs = [name for name in objects if name.startswith(f"logs/{RUN_NAME}-")]
    if missing or not logs:
        raise StagingError(f"the bucket lacks {missing or 'the log'} after training; it holds {objects}")
    rows = (vm.buckets / vm.bucket / f"runs/{RUN_NAME}/log.csv").read_text().splitlines()[1:]
    if [int(row.split(",", 1)[0]) for row in rows] != list(range(len(rows))):
        raise StagingError(f"log.csv has a redone or missing epoch: {rows}")
    artifact = weights.load(vm.buckets / vm.bucket / f"weights/{RUN_NAME}.npz")
    if not (vm.bucket_path(vm.status) / "done").is_file():
        raise StagingError(f"no done marker at {vm.status}/done after a successful run.")
    if vm.shutdowns() != 1:
        raise StagingError(f"shutdown was called {vm.shutdowns()} times after training (want 1).")
    ctx.facts["trained_weights"] = str(vm.buckets / vm.bucket / f"weights/{RUN_NAME}.npz")

    calls_before = vm.calls.read_text()
    status = vm.boot(log)
    new_calls = vm.calls.read_text()[len(calls_before) :]
    if status != 0 or vm.objects() != objects or "model.train" in new_calls or "shutdown" in new_calls:
        raise StagingError(f"the third boot did something (exit {status}); a finished run must not train again.")

    failing = Vm(ctx, "vm-failing", broken_corpus=True)
    status = failing.boot(log)
    failed_objects = failing.objects()
    ctx.log(f"failing boot exit {status}; bucket: {failed_objects}")
    failed_logs = [name for name in failed_objects if name.startswith(f"logs/{RUN_NAME}-")]
    if status == 0:
        raise StagingError("the startup script exited 0 though training failed.")
    if not failed_logs:
        raise StagingError(f"a failed run uploaded no log; the bucket holds {failed_objects}")
    uploaded = (failing.buckets / failing.bucket / failed_logs[0]).read_text()
    if "offsets" not in uploaded:
        raise StagingError("the uploaded log of the failed run does not say why training failed.")
    if failing.shutdowns() != 1 or any(name.startswith("weights/") for name in failed_objects):
        raise StagingError(f"a failed run called shutdown {failing.shutdowns()} times and uploaded {failed_objects}")
    status_dir = failing.bucket_path(failing.status)
    if (status_dir / "done").exists() or not (status_dir / "failed").is_file():
        raise StagingError("a failed run must leave the bucket's failed marker and no done marker.")
    detail = (
        f"boot 1 killed after {saved} reached the bucket; boot 2 {resumed[0].split(':')[0]}, finished {len(rows)} "
        f"epochs in {seconds:.0f} s in all: runs/{RUN_NAME}/, weights/{RUN_NAME}.npz ({artifact.metadata['units']} "
        "units), log, done marker in the bucket, shutdown called once; boot 3 did not retrain; failed training "
        "uploaded its log, marked the run failed and powered off"
    )
    trained = {"trained_sha256": hashlib.sha256(Path(ctx.facts["trained_weights"]).read_bytes()).hexdigest()}
    return detail, {"resumed_after_epoch": done_epochs, "seconds": round(seconds, 1), "bucket": objects, **trained}
