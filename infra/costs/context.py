"""What a pricer may look at besides its own resource: the catalogue, the whole plan, the usage assumptions.

Some prices depend on other resources (a node pool's zones come from its cluster, a LoadBalancer Service is a
GCP forwarding rule only on GKE, the GKE free tier credits one zonal cluster), so pricers get the whole plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from infra.costs.catalogue import Catalogue, Item

ZONE_RE = re.compile(r"^([a-z]+-[a-z]+\d+)-[a-z]$")
REGION_RE = re.compile(r"^[a-z]+-[a-z]+\d+$")


def basename(value: Any) -> str:
    """'projects/p/zones/z/machineTypes/n1-standard-4' -> 'n1-standard-4' (the API accepts both spellings)."""
    return str(value or "").rstrip("/").rsplit("/", 1)[-1]


def region_of(location: Any) -> str | None:
    """us-central1-a -> us-central1; us-central1 -> us-central1; anything else (e.g. 'US') -> None."""
    loc = basename(location)
    if m := ZONE_RE.match(loc):
        return m.group(1)
    return loc if REGION_RE.match(loc) else None


def is_zone(location: Any) -> bool:
    return bool(ZONE_RE.match(basename(location)))


@dataclass
class PricingContext:
    """Shared, per-stack state for pricers; `gke_credit_left` is consumed by the first eligible cluster."""

    catalogue: Catalogue
    plan: Any
    assumptions: dict[str, float]
    gke_credit_left: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def config(self) -> dict:
        return dict(getattr(self.plan, "config", None) or {})

    @property
    def region(self) -> str | None:
        """The stack's default GCP region from its config (gcp:region, else the region of gcp:zone)."""
        cfg = self.config
        return region_of(cfg.get("gcp:region")) or region_of(cfg.get("gcp:zone"))

    def resources(self, *types: str) -> list:
        return [r for r in self.plan.resources if r.type in types]

    def find(
        self, kind: str, name: str, pricing: str = "on-demand", region: str | None = None
    ) -> tuple[Item | None, str]:
        """Catalogue item plus a note when the price is for another region than the resource's."""
        region = region or self.region
        item = self.catalogue.find(kind, name, pricing, region)
        if item is None or region is None or item.region in (region, "all"):
            return item, ""
        return item, f"{item.region} price (catalogue has none for {region})"
