"""What every step shares: the build folder, podman and buildah (`containers`), the image tags and a per-step log."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from robojam_format.layout import REPO_ROOT
from staging.podman import Podman

IMAGE = "localhost/robojam:staging"
IMAGE_NEXT = "localhost/robojam:staging-next"  # the second tag the droplet rollout switches to


@dataclass
class Context:
    build_dir: Path
    containers: Podman
    repo: Path = REPO_ROOT
    log_path: Path | None = None
    facts: dict = field(default_factory=dict)  # what one step leaves for later ones (e.g. the image was built)

    def log(self, text: str) -> None:
        """Append to the current step's log file."""
        if self.log_path is None or not text:
            return
        with self.log_path.open("a") as f:
            f.write(f"[{time.strftime('%H:%M:%S')}] {text.rstrip()}\n")

    def path(self, *parts: str) -> Path:
        path = self.build_dir.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path
