"""What a deploy target is: its config keys, settings, cross-checks and build, and where the rest of it lives.

One instance per target module (infra/targets/droplet.py, ...); the registry (infra/targets/__init__.py) lists
them. The last four fields name what a target needs outside infra/targets/ (docs/deploy.md's checklist), so a
test can find each: its components, the resource type its pricer bills (infra.costs), the catalogue kinds that
price it, and its staging steps (staging/step_<name>.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infra.config import Key

if TYPE_CHECKING:
    from infra.stack_config import StackConfig


@dataclass(frozen=True)
class Target:
    name: str  # the value of robojam:target
    keys: tuple[Key, ...]  # every key it reads but robojam:target, in parse order (shared keys first)
    settings: type  # its settings dataclass: one field per key of its own (and robojam:sshCidrs where read)
    check: Callable[[dict[str, Any], Mapping[str, str]], None]  # cross-key rules: (field -> value, field -> key)
    build: Callable[[StackConfig], None]  # creates its resources and exports what operators need
    cloud: str  # "gcp" (reads the gcp:* keys) or "digitalocean"
    serves: bool  # runs the service image (it reads robojam:image); else it trains
    components: tuple[type, ...]  # its ComponentResources (infra/components/)
    billed_type: str  # the resource type its pricer bills (infra.costs.pricing.PRICERS)
    catalogue_kinds: tuple[str, ...]  # catalogue kinds its prices come from (infra/costs/catalogue.json)
    staging_steps: tuple[str, ...]  # its steps in `make staging` (staging/step_<name>.py, `run`)

    def key_names(self) -> dict[str, str]:
        """Settings field -> key name, for the messages of the cross-key rules."""
        return {key.field: key.name for key in self.keys}
