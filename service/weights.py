"""The weights the service serves: the contract's validated artifact, found where the settings say.

The format and every check on it live in `robojam_format.artifact`; this module only adds where to look
($ROBOJAM_WEIGHTS, else the shipped weights, as `service.settings` reads it) and a hint for a missing file, so the
service refuses to start with a clear reason instead of failing on the first request.
"""

from __future__ import annotations

import os
from pathlib import Path

from robojam_format.artifact import Artifact, ArtifactError, load
from service import settings


def load_weights(path: str | os.PathLike) -> Artifact:
    """Read and fully validate the weights artifact at `path`; ArtifactError, naming the file, if it is missing."""
    where = Path(path)
    if not where.is_file():
        raise ArtifactError(f"weights artifact not found: {where} (set {settings.WEIGHTS_ENV} to its path).")
    return load(where)


def configured_weights() -> Artifact:
    """The weights the settings name ($ROBOJAM_WEIGHTS, else the shipped weights), read and validated."""
    return load_weights(settings.weights_path())
