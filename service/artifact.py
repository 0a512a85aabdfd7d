"""The weights the service serves: the contract's validated artifact, found where the settings say.

The format and every check on it live in `robojam_format.artifact`; this module only adds where to look (`None`
means $ROBOJAM_WEIGHTS, else the shipped weights, as `service.settings` reads it) and a hint for a missing file,
so the service refuses to start with a clear reason instead of failing on the first request. The format holds any
input dimension (IMPSY's models, for the conformance tests and benchmarks, which load it with
`robojam_format.artifact.load`); the service plays MicroJam's 3-D touches only and refuses any other here.
"""

from __future__ import annotations

import os
from pathlib import Path

from robojam_format.artifact import Artifact, ArtifactError, load
from robojam_format.performance import DIMENSION
from service import settings

__all__ = ["Artifact", "ArtifactError", "load_artifact"]


def load_artifact(path: str | os.PathLike | None = None) -> Artifact:
    """Read and fully validate the artifact at `path` (`None`: the configured weights)."""
    where = Path(path) if path is not None else settings.weights_path()
    if not where.is_file():
        raise ArtifactError(f"weights artifact not found: {where} (set {settings.WEIGHTS_ENV} to its path).")
    return load(where, dimension=DIMENSION)
