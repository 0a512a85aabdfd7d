"""The program: validate the stack's config, then build the selected target and export what operators need."""

from __future__ import annotations

import pulumi

from infra import stack_config
from infra.targets import TARGETS


def main() -> None:
    """Entry point (called by infra/__main__.py and, under mocks, by infra.mock_plan.plan_stack)."""
    cfg = stack_config.load()  # raises ConfigError before any resource exists
    pulumi.export("target", cfg.target)
    TARGETS[cfg.target].build(cfg)
