"""Offline cost estimates for every Pulumi stack, priced from a bundled, sourced catalogue.

`python -m infra.costs` plans each stack with the shared mock runner (`infra.mock_plan.plan_stack`, the same one
the infra tests use), prices the recorded resources (`pricing.price_plan`) and prints Infracost-style tables,
a comparison with the capacity model's cost per 1M predictions (capacity from `make bench-capacity`'s record,
`measured`; usage charges from `usage`), a break-even table and chart (`--plot`; `--sizes` across droplet sizes and
GKE node counts, `sizes`), JSON (`--json`) and a budget verdict (`--max-monthly`). The rules: docs/costs.md.

Values, not dicts: each pricer (`gcp`, `digitalocean`) reads a frozen `PricingContext` and returns a `Priced`
(its `PriceLine`s, the `ServingCapacity` of `CapacityStep`s it provides, warnings); `price_plan` gathers them
into a `StackEstimate` (with its `TrainingRun`s); `report.build_report` turns estimates into the JSON-ready
report that the tables and the chart draw from. The stack's target and default region come from its parsed
settings through `stack`, the costs' only access to `infra.config` and `infra.stack_config`.
"""

from infra.costs.catalogue import Catalogue, CatalogueError, load_catalogue
from infra.costs.estimate import Priced, PriceLine, StackEstimate
from infra.costs.pricing import price_plan
from infra.costs.serving import CapacityStep, ServingCapacity

__all__ = [
    "CapacityStep",
    "Catalogue",
    "CatalogueError",
    "PriceLine",
    "Priced",
    "ServingCapacity",
    "StackEstimate",
    "load_catalogue",
    "price_plan",
]
