"""Offline cost estimates for every Pulumi stack, priced from a bundled, sourced catalogue.

`python -m infra.costs` plans each stack with the shared mock runner (`infra.mock_plan.plan_stack`, the same one
the infra tests use), prices the recorded resources (`pricing.price_plan`) and prints Infracost-style tables,
a comparison with the capacity model's cost per 1M predictions, a break-even table and chart (`--plot`),
JSON (`--json`) and a budget verdict (`--max-monthly`).
"""

from infra.costs.catalogue import Catalogue, CatalogueError, load_catalogue
from infra.costs.pricing import price_plan

__all__ = ["Catalogue", "CatalogueError", "load_catalogue", "price_plan"]
