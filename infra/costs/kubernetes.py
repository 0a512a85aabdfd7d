"""Pricers for Kubernetes objects that make the cloud bill something: a LoadBalancer Service or an Ingress.

Pods cost nothing on their own (the node pool is priced); a `type: LoadBalancer` Service makes GKE create a
network load balancer forwarding rule, and on DigitalOcean Kubernetes a DO load balancer.
"""

from __future__ import annotations

from infra.costs import digitalocean, gcp
from infra.costs.context import PricingContext
from infra.costs.estimate import Line, unpriced_line

GKE = "gcp:container/cluster:Cluster"
DOKS = "digitalocean:index/kubernetesCluster:KubernetesCluster"


def service_lines(res, ctx: PricingContext) -> list[Line]:
    spec = res.inputs.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return []
    if ctx.resources(GKE):
        return gcp.forwarding_rule_lines(res, ctx, "LoadBalancer Service: network LB forwarding rule")
    if ctx.resources(DOKS):
        return digitalocean.load_balancer_lines(res, ctx)
    return [
        unpriced_line(
            res,
            "LoadBalancer Service",
            "no cluster in this stack tells which cloud's load balancer it creates",
            1,
            "LB",
            "network",
        )
    ]


def ingress_lines(res, ctx: PricingContext) -> list[Line]:
    if ctx.resources(GKE):
        return gcp.forwarding_rule_lines(res, ctx, "Ingress: HTTP(S) LB forwarding rule")
    return [unpriced_line(res, "Ingress", "only GKE ingresses are in the catalogue", 1, "LB", "network")]


PRICERS = {
    "kubernetes:core/v1:Service": service_lines,
    "kubernetes:networking.k8s.io/v1:Ingress": ingress_lines,
}
