"""A weights artifact promoted to the droplet as a user promotes one (docs/deploy.md, "Promote").

A user copies the train stack's `weights/NAME.npz` into model/weights/ (`gcloud storage cp`), sets
`robojam:weights` to it and runs `pulumi up`, which builds the image with the build arguments and label the plan
records. Here the artifact is copied into model/weights/ (STAGED_PREFIX + pid) only while the stack is planned
with that key and the image built, then removed whatever happened (it is never left in the repository; .gitignore
names it too); the image is the repository's Dockerfile built by buildah with the plan's build arguments and
labels, so only the weights layer is new. `mismatch` says in one line why GET /api/model does not show the
promoted artifact.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devtools.random_weights import write_random_artifact
from infra.weights import LABEL, WEIGHTS, WEIGHTS_DIR
from robojam_format.layout import REPO_ROOT
from staging.build import bud_args, build_inputs
from staging.context import Context

STAGED_PREFIX = "staging-promoted-"  # + this process's id: in model/weights/ only while staging plans and builds
STAND_IN_RUN = "staging-stand-in"  # the run name of the artifact promoted when no training step ran
REPORTED = ("sha256", "run", "val_nll", "created")  # what GET /api/model and the plan's `model` output share


@dataclass(frozen=True)
class Promoted:
    image: str  # the tag buildah built
    sha256: str  # the promoted file's
    model: dict  # the plan's `model` output: path, sha256, run, val_nll, created
    label: str  # the built image's LABEL (the artifact's sha256, as the plan asked)
    build_seconds: float


@contextlib.contextmanager
def staged_copy(source: Path) -> Iterator[str]:
    """`source` copied into model/weights/ (what `gcloud storage cp URI model/weights/` does); yields the
    robojam:weights value naming the copy, and removes the copy afterwards."""
    target = WEIGHTS_DIR / f"{STAGED_PREFIX}{os.getpid()}.npz"  # two checks in one checkout never share it
    shutil.copyfile(source, target)
    try:
        yield target.relative_to(REPO_ROOT).as_posix()
    finally:
        target.unlink(missing_ok=True)


def stand_in_artifact(path: Path) -> Path:
    """A small random but valid artifact with run metadata, promoted when the training step did not run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_random_artifact(path, units=64, layers=2, mixtures=5, seed=18, run=STAND_IN_RUN)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def promote(ctx: Context, source: Path, plan: Callable[[dict], object], tag: str) -> Promoted:
    """Plan with robojam:weights naming a copy of `source` and build the plan's image as `tag`."""
    with staged_copy(source) as value:
        recorded = plan({WEIGHTS.name: value})
        inputs = build_inputs(recorded)
        ctx.log(f"robojam:weights={value}: build args {inputs.build_args}, labels {inputs.labels}")
        start = time.monotonic()
        done = ctx.containers.buildah(*bud_args(inputs, tag), timeout=1200)
        seconds = time.monotonic() - start
    ctx.log(done.stdout + done.stderr)
    label = ctx.containers.podman("image", "inspect", "--format", f'{{{{index .Labels "{LABEL}"}}}}', tag)
    return Promoted(tag, sha256_of(source), recorded.outputs["model"], label.stdout.strip(), round(seconds, 1))


def short(sha256: str | None) -> str:
    return f"{sha256[:12]}…" if sha256 else str(sha256)


def mismatch(served: dict, model: dict, artifact_sha256: str, label: str | None = None) -> str | None:
    """Why GET /api/model (`served`) does not show the artifact, in one line; None when it does.

    The served sha256 must equal the artifact file's, the plan's `model` output's and, for an image built with
    the plan's labels, the image's LABEL; the run metadata must equal the output's.
    """
    shas = {"/api/model": served.get("sha256"), "the plan's `model` output": model.get("sha256")}
    if label is not None:
        shas["the image label"] = label
    if any(sha != artifact_sha256 for sha in shas.values()):
        said = ", ".join(f"{where} {short(sha)}" for where, sha in shas.items())
        return f"the promoted artifact's sha256 is {short(artifact_sha256)}, but {said}."
    differ = [key for key in REPORTED if served.get(key) != model.get(key)]
    if differ:
        pairs = ", ".join(f"{key} {served.get(key)!r} (output {model.get(key)!r})" for key in differ)
        return f"GET /api/model reports {pairs}."
    return None
