"""One typed, validated view of the stack's config; a wrong value stops the program before any resource."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

TARGETS = ("droplet", "gke", "gpu-vm")


class ConfigError(ValueError):
    """A stack config value is wrong; the message is one sentence that names the key."""


@dataclass(frozen=True)
class StackConfig:
    target: str


def load() -> StackConfig:
    target = pulumi.Config("robojam").get("target")
    if target not in TARGETS:
        raise ConfigError(f"robojam:target must be one of {', '.join(TARGETS)}, got {target!r}.")
    return StackConfig(target=target)
