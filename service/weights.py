"""The weights the service serves: the contract's validated artifact, found where the settings say.

The format and every check on it live in `robojam_format.artifact`; this module only adds where to look
($ROBOJAM_WEIGHTS, else the shipped weights, as `service.settings` reads it) and a hint for a missing file, so the
service refuses to start with a clear reason instead of failing on the first request. The format holds any input
dimension (IMPSY's models, for the conformance tests and benchmarks, which load it with
`robojam_format.artifact.load`); the service plays MicroJam's 3-D touches only and refuses any other here.
"""

from __future__ import annotations

import os
from pathlib import Path

from robojam_format.artifact import Artifact, ArtifactError, load
from robojam_format.performance import DIMENSION
from service import settings


def load_weights(path: str | os.PathLike) -> Artifact:
    """Read and fully validate the weights artifact at `path` (MicroJam's 3-D input only); ArtifactError, naming
    the file, if it is missing."""
    where = Path(path)
    if not where.is_file():
        raise ArtifactError(f"weights artifact not found: {where} (set {settings.WEIGHTS_ENV} to its path).")
    return load(where, dimension=DIMENSION)


def configured_weights() -> Artifact:
    """The weights the settings name ($ROBOJAM_WEIGHTS, else the shipped weights), read and validated."""
    return load_weights(settings.weights_path())
