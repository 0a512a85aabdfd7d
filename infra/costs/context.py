"""What a pricer may look at besides its own resource: the catalogue, the whole plan, the usage assumptions.

Some prices depend on other resources or on the billing account (a node pool's pods-fit check reads the
Deployment; a LoadBalancer Service is a GCP forwarding rule only next to a GKE cluster; the GKE credit, the
Artifact Registry free 0.5 GB and the forwarding-rule tier are per account or project), so pricers get the
whole plan and a per-stack tally. One stack is assumed to be alone in its billing account and project.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infra import config
from infra.costs.catalogue import Catalogue, Item
from infra.costs.estimate import Line, line


def basename(value: Any) -> str:
    """'projects/p/zones/z/machineTypes/n1-standard-4' -> 'n1-standard-4' (the API accepts both spellings)."""
    return str(value or "").rstrip("/").rsplit("/", 1)[-1]


def region_of(location: Any) -> str | None:
    """us-central1-a -> us-central1; us-central1 -> us-central1; anything else (e.g. 'US') -> None.

    The zone and region rules are infra.config's, so the costs read locations exactly as the config does.
    """
    loc = basename(location).lower()
    if config.ZONE_PATTERN.match(loc):
        return config.region_of(loc)
    return loc if config.REGION_PATTERN.match(loc) else None


@dataclass
class PricingContext:
    """Shared, per-stack state for pricers; the allowances are consumed by the first resource that uses them."""

    catalogue: Catalogue
    plan: Any
    assumptions: dict[str, float]
    gke_credit_left: float = 0.0  # $/month of GKE free tier (one zonal cluster per billing account)
    registry_free_gb_left: float = 0.0  # Artifact Registry's free GB (once per billing account)
    forwarding_rules: int = 0  # rules priced so far (the first five share one flat charge)
    train_hours: float | None = None  # --train-hours: one run's length instead of the VM's run limit
    serving: dict | None = None  # the serving capacity a pricer found (node pool, droplet)
    warnings: list[str] = field(default_factory=list)

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
    ) -> Line:
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
