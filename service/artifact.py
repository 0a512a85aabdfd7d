"""The weights the service serves: the contract's validated artifact, found where the settings say.

The format and every check on it live in `robojam_format.artifact`; this module only adds where to look (`None`
means $ROBOJAM_WEIGHTS, else the shipped weights, as `service.settings` reads it) and a hint for a missing file,
so the service refuses to start with a clear reason instead of failing on the first request.
"""

from __future__ import annotations

import os
from pathlib import Path

from robojam_format.artifact import Artifact, ArtifactError, load
from service import settings

__all__ = ["Artifact", "ArtifactError", "load_artifact"]


def load_artifact(path: str | os.PathLike | None = None) -> Artifact:
    """Read and fully validate the artifact at `path` (`None`: the configured weights)."""
    where = Path(path) if path is not None else settings.weights_path()
    if not where.is_file():
        raise ArtifactError(f"weights artifact not found: {where} (set {settings.WEIGHTS_ENV} to its path).")
    return load(where)
