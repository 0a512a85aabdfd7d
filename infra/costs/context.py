"""What a pricer may look at besides its own resource: the catalogue, the whole plan, the stack, the assumptions.

Some prices depend on other resources or on the billing account (a node pool's pods-fit check reads the
Deployment; a LoadBalancer Service is a GCP forwarding rule only next to a GKE cluster; the GKE credit, the
Artifact Registry free 0.5 GB and the forwarding-rule tier are per account or project), so pricers get the
whole plan. An allowance shared by the account goes to resources in billing order (the plan's resources by
name, then type): a pricer asks how many resources of its kind come before its own (`PricingContext.before`)
instead of consuming a shared tally, so the context is read-only. One stack is assumed to be alone in its
billing account and project.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.costs.catalogue import Catalogue, Item
from infra.costs.estimate import PriceLine, line
from infra.costs.stack import StackFacts


def billing_key(res) -> tuple[str, str]:
    """Where a resource comes in billing order: by name, then type (a resource's identity in its stack)."""
    return res.name, res.type


def billing_order(plan: Any) -> list:
    """The plan's resources in the order they are priced (registration order is async, so not that)."""
    return sorted(plan.resources, key=billing_key)


@dataclass(frozen=True)
class PricingContext:
    """Read-only, per-stack inputs for pricers."""

    catalogue: Catalogue
    plan: Any
    assumptions: Mapping[str, float]
    stack: StackFacts  # target, default GCP region and zone, from the stack's parsed settings
    train_hours: float | None = None  # --train-hours: one run's length instead of the VM's run limit

    @property
    def region(self) -> str | None:
        """The stack's default GCP region (gcp:region, else the region of gcp:zone), as the settings hold it."""
        return self.stack.gcp_region

    def resources(self, *types: str) -> list:
        return [r for r in self.plan.resources if r.type in types]

    def before(self, res, counts: Callable[[Any], bool]) -> int:
        """How many resources that `counts` come before `res` in billing order: its share of an allowance."""
        return sum(1 for other in self.plan.resources if billing_key(other) < billing_key(res) and counts(other))

    def find(self, kind: str, name: str, pricing: str = "on-demand", region: str | None = None) -> Item | None:
        return self.catalogue.find(kind, name, pricing, region or self.region)

    def priced(
        self,
        res,
        kind: str,
        name: str,
        *,
        pricing: str = "on-demand",
        region: str | None = None,
        note: str = "",
        **fields,
    ) -> PriceLine:
        """A line for (kind, name, pricing) from the catalogue, or an 'unpriced' line saying what is missing."""
        region = region or self.region
        item = self.catalogue.find(kind, name, pricing, region)
        notes = [note]
        if item is not None and region is not None and item.region not in (region, "all"):
            notes.append(f"{item.region} price (catalogue has none for {region})")
        return line(
            res,
            catalogue=self.catalogue,
            item=item,
            missing=f"no {pricing} price for {kind} {name!r} in the catalogue",
            note="; ".join(n for n in notes if n),
            **fields,
        )
