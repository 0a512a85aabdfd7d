"""The sizes a user would pick next: every catalogued droplet size, and the GKE pool at more nodes.

A variant is the stack's own plan with one input changed (the droplet's `size`; the node pool's `maxNodeCount`
with the HPA's `maxReplicas` raised so pods can use every node), priced like the stack itself, so the
break-even across sizes (`--sizes`) compares what the program would really create.
"""

from __future__ import annotations

from dataclasses import replace

from infra.costs.capacity import HPA
from infra.costs.catalogue import Catalogue
from infra.tables import resource_types as types

DROPLET, NODE_POOL = types.DO_DROPLET, types.GCP_NODE_POOL
GKE_MAX_NODES = 8  # node counts the GKE variant runs up to


def _with_inputs(plan, type_token: str, change) -> object:
    resources = [replace(r, inputs=change(r.inputs)) if r.type == type_token else r for r in plan.resources]
    return replace(plan, resources=resources)


def droplet_variants(plan, catalogue: Catalogue) -> list:
    """The plan once per catalogued droplet size (cheapest first), named 'stack s-2vcpu-4gb'."""
    if not plan.of_type(DROPLET):
        return []
    sizes = sorted((i for i in catalogue.items if i.kind == "droplet"), key=lambda i: i.price)
    return [
        replace(_with_inputs(plan, DROPLET, lambda inputs, s=item.name: {**inputs, "size": s}), stack=item.name)
        for item in sizes
    ]


def gke_variant(plan, max_nodes: int = GKE_MAX_NODES) -> list:
    """The plan with the node pool allowed `max_nodes` nodes and the HPA enough replicas to fill them."""
    if not plan.of_type(NODE_POOL) or not plan.of_type(HPA):
        return []

    def pool(inputs: dict) -> dict:
        return {**inputs, "autoscaling": {**(inputs.get("autoscaling") or {}), "maxNodeCount": max_nodes}}

    def hpa(inputs: dict) -> dict:
        spec = inputs.get("spec") or {}
        return {**inputs, "spec": {**spec, "maxReplicas": 4 * max_nodes}}

    wider = _with_inputs(_with_inputs(plan, NODE_POOL, pool), HPA, hpa)
    return [replace(wider, stack=f"gke-{max_nodes}-nodes")]
