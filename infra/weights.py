"""robojam:weights: the weights artifact the serving image is built with (issue 18 item 3).

Checked at preview with the contract's own artifact checks (robojam_format.artifact.load: missing, unreadable,
not an artifact, not the MicroJam 3-D input), so a bad file stops the program before anything is created. The
file must sit in model/weights/ (the image's build context keeps that folder; `gcloud storage cp URI
model/weights/` puts a trained one there). The image carries it as model/weights/robojam.npz, labelled with its
sha256, which GET /api/model reports from the file it loaded.
"""

from __future__ import annotations

import hashlib
import pathlib
from dataclasses import dataclass

from infra.config import ConfigError, Key
from robojam_format import artifact
from robojam_format.layout import REPO_ROOT, SHIPPED_WEIGHTS
from robojam_format.performance import DIMENSION

WEIGHTS_DIR = SHIPPED_WEIGHTS.parent
LABEL = "org.robojam.weights.sha256"
PREBUILT_MODEL = "a prebuilt image serves its own weights: GET /api/model on the target says which"


@dataclass(frozen=True)
class ServedWeights:
    """The configured artifact: where it is (relative to the build context), its digest and its run metadata."""

    path: str  # relative to the repository root, e.g. model/weights/gpu.npz
    sha256: str
    run: str | None
    val_nll: float | None
    created: str | None

    def output(self) -> dict:
        """The stack output `model`: what GET /api/model on the deployed target reports."""
        return {"path": self.path, "sha256": self.sha256, "run": self.run, "val_nll": self.val_nll,
                "created": self.created}  # fmt: skip


def parse_weights(key: str, raw: str) -> ServedWeights:
    path = pathlib.Path(raw.strip())
    path = (path if path.is_absolute() else REPO_ROOT / path).resolve()
    if path.parent != WEIGHTS_DIR.resolve():
        raise ConfigError(
            f"{key} must name a file in model/weights/ (the image's build context), got {raw.strip()!r}; "
            "copy it there first (gcloud storage cp URI model/weights/)."
        )
    try:
        loaded = artifact.load(path, dimension=DIMENSION)  # the service serves MicroJam's 3-D input only
    except artifact.ArtifactError as exc:
        raise ConfigError(f"{key} is not a usable weights artifact: {exc}") from None
    meta = loaded.metadata
    return ServedWeights(
        path=path.relative_to(REPO_ROOT).as_posix(),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        run=meta.get("run"),
        val_nll=meta.get("val_nll"),
        created=meta.get("created"),
    )


WEIGHTS = Key(
    "robojam:weights",
    "weights",
    SHIPPED_WEIGHTS.relative_to(REPO_ROOT).as_posix(),
    "the weights artifact the image serves: a file in model/weights/ (e.g. the train stack's, fetched with "
    "`gcloud storage cp`); checked at preview; ignored with robojam:image",
    parse_weights,
)
