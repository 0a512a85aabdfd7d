"""One typed, validated view of the stack's config; a wrong value stops the program before any resource.

The shared keys (infra.config) and the selected target's keys (infra/targets/) are parsed into a StackConfig:
`gcp` for the GCP targets, `settings` the target's own settings dataclass. Rules that relate two keys are the
target's `check`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import pulumi

from infra.config import (
    ConfigError,
    GcpSettings,
    Key,
    as_words,
    check_names,
    check_secrets,
    choice,
    gcp_settings,
    parse_keys,
    read_pulumi_config,
)
from infra.targets import TARGETS
from infra.targets.target import Target

TARGET_KEY = Key(
    "robojam:target", "target", None, f"which target this stack builds: {as_words(TARGETS)}", choice(tuple(TARGETS))
)
# Every key, each once, in the order the docs list them: robojam:target, then each target's (shared ones first).
KEYS: tuple[Key, ...] = tuple({k.name: k for t in TARGETS.values() for k in (TARGET_KEY, *t.keys)}.values())
KEYS_BY_NAME = {k.name: k for k in KEYS}
_STACK = re.compile(r"^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$")  # fits GCP account ids, bucket and droplet names


@dataclass(frozen=True)
class StackConfig:
    stack: str
    target: str
    image: str  # prebuilt image reference; "" = build from the Dockerfile
    settings: Any  # the target's settings dataclass (infra/targets/<target>.py)
    gcp: GcpSettings | None = None


def targets_reading(key: Key) -> tuple[str, ...]:
    """The targets that read a key (robojam:target: all of them)."""
    return tuple(name for name, t in TARGETS.items() if key is TARGET_KEY or key in t.keys)


def load() -> StackConfig:
    """Validate the running stack's config (raises ConfigError with one sentence)."""
    values, secret_keys = read_pulumi_config()
    return parse(values, stack=pulumi.get_stack(), secret_keys=secret_keys)


def parse(values: Mapping[str, str], stack: str = "", secret_keys: set[str] | frozenset = frozenset()) -> StackConfig:
    """Turn raw config strings into a StackConfig, checking every rule before anything is created."""
    if stack and not _STACK.match(stack):
        raise ConfigError(
            f"stack name {stack!r} names cloud resources, so it must be 1-16 lowercase letters, digits or hyphens."
        )
    target: Target = TARGETS[TARGET_KEY.parse(TARGET_KEY.name, values.get(TARGET_KEY.name, ""))]
    check_names(values, KEYS_BY_NAME, (TARGET_KEY, *target.keys), target.name)
    check_secrets(values, KEYS, secret_keys)
    parsed = parse_keys(target.keys, values)
    names = target.key_names()
    gcp = gcp_settings(parsed, names) if target.cloud == "gcp" else None
    target.check(parsed, names)
    settings = target.settings(**{f.name: parsed[f.name] for f in fields(target.settings) if f.name in parsed})
    return StackConfig(stack=stack, target=target.name, image=parsed.get("image", ""), settings=settings, gcp=gcp)
