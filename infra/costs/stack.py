"""What the costs read from a stack's parsed settings: the one place that touches infra.config and infra.stack_config.

Pricing needs three facts about a stack besides its resources: its target (shown with every table) and its
default GCP region and zone (the region a price is looked up in when a resource names none). They come from
the StackConfig `infra.stack_config.parse` returns for the plan's config, never from the raw strings. A resource's
own location (a VM's zone, a bucket's region) is read with the config's zone and region rules, a Kubernetes
quantity with its quantity rule. Every use of the config by the costs goes through the access points below, so a
reshaped config changes this file only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import config, stack_config
from infra.mock_plan import SECRET_PLACEHOLDER, config_strings

TARGET_KEY = stack_config.TARGET_KEY.name
ConfigError = config.ConfigError  # access point: a stack config value is wrong (one sentence naming the key)
quantity = config.quantity  # access point: a Kubernetes quantity as a number, by the rule the config checks with


@dataclass(frozen=True)
class StackFacts:
    """The settings pricing reads; a bare plan (resources without a stack config) has none of them."""

    target: str = ""
    gcp_region: str | None = None  # where a GCP resource without its own location is priced
    gcp_zone: str | None = None


def parse_settings(plan: Any) -> stack_config.StackConfig | None:
    """Access point: the StackConfig the program parsed from this plan's config, or None for a bare plan.

    A bare plan (a hand-built set of resources, no `robojam:target`) has no settings; any other config goes
    through `infra.stack_config.parse`, so an invalid one raises ConfigError as the program itself would.
    """
    values = dict(getattr(plan, "config", None) or {})
    if TARGET_KEY not in values:
        return None
    secret_keys = {key for key, value in values.items() if value == SECRET_PLACEHOLDER}
    return stack_config.parse(config_strings(values), stack=plan.stack, secret_keys=secret_keys)


def facts_of(settings: stack_config.StackConfig | None) -> StackFacts:
    """Access point: target, GCP region and zone from the parsed settings (the region defaults to the zone's)."""
    if settings is None:
        return StackFacts()
    gcp = settings.gcp
    return StackFacts(
        target=settings.target,
        gcp_region=gcp.region if gcp else None,
        gcp_zone=gcp.zone if gcp else None,
    )


def stack_facts(plan: Any) -> StackFacts:
    """The facts pricing needs about the plan's stack."""
    return facts_of(parse_settings(plan))


def basename(value: Any) -> str:
    """'projects/p/zones/z/machineTypes/n1-standard-4' -> 'n1-standard-4' (the API accepts both spellings)."""
    return str(value or "").rstrip("/").rsplit("/", 1)[-1]


def region_of_location(location: Any) -> str | None:
    """Access point: a resource's location as a GCP region (us-central1-a -> us-central1), else None ('US').

    The zone and region rules are infra.config's, so the costs read a location exactly as the config does.
    """
    loc = basename(location).lower()
    if config.ZONE_PATTERN.match(loc):
        return config.region_of(loc)
    return loc if config.REGION_PATTERN.match(loc) else None


WEIGHTS_KEY = "robojam:weights"  # issue 18's key: the weights file a stack serves (relative to the repository)


def served_weights(plan: Any) -> Path:
    """Access point: the weights file the stack's image serves: `robojam:weights` when set, else the shipped ones."""
    from robojam_format.layout import REPO_ROOT, SHIPPED_WEIGHTS

    value = str((getattr(plan, "config", None) or {}).get(WEIGHTS_KEY) or "").strip()
    return (REPO_ROOT / value) if value else SHIPPED_WEIGHTS
