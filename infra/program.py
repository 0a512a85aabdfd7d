"""The program: read the validated config, then build the selected target."""

from __future__ import annotations

import pulumi

from infra import config


def main() -> None:
    cfg = config.load()
    pulumi.export("target", cfg.target)
