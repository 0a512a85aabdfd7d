"""The usage model: charges that grow with traffic, for the requests a month assumed (--requests-per-month).

Bytes per request are what the capacity record measured on the wire (`request_bytes` in, `reply_bytes` out);
the Cloud Logging bytes per request are an assumption (`log_bytes_per_request`). Each charge is one PriceLine
(category `usage`) with its catalogue source and date, on the resource that incurs it:
- GKE, on the LoadBalancer Service: internet egress (replies) and load-balancer data processing (in and out);
- GKE, on the cluster: Cloud Logging of the access log beyond the project's free 50 GiB a month;
- a droplet: outbound transfer beyond its included allowance (DigitalOcean's inbound is free).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.costs.context import PricingContext
from infra.costs.estimate import USAGE, PriceLine, line

GIB = 2**30


@dataclass(frozen=True)
class Traffic:
    """A month of requests and what each puts on the wire and in the logs."""

    requests: float
    request_bytes: float
    reply_bytes: float
    log_bytes: float

    @classmethod
    def of(cls, assumptions) -> Traffic:
        return cls(
            assumptions["requests_per_month"],
            assumptions["request_bytes"],
            assumptions["reply_bytes"],
            assumptions["log_bytes_per_request"],
        )

    def gib(self, bytes_each: float) -> float:
        return self.requests * bytes_each / GIB


def charge(res, ctx: PricingContext, name: str, gib: float, free_gib: float, what: str) -> PriceLine:
    """One usage line: `gib` GiB a month of catalogue usage `name`, of which `free_gib` cost nothing."""
    traffic = Traffic.of(ctx.assumptions)
    item = ctx.find("usage", name)
    billed = max(0.0, gib - free_gib)
    free = f"; {min(gib, free_gib):,.2f} GiB inside the {free_gib:,.0f} GiB included" if free_gib else ""
    note = f"{traffic.requests:,.0f} requests a month (--requests-per-month) x {what} = {gib:,.2f} GiB{free}"
    fields = {"component": f"{name} (usage)", "unit": "GB", "category": USAGE, "quantity": billed, "note": note}
    if item is None:
        return line(res, catalogue=ctx.catalogue, missing=f"no usage price {name!r} in the catalogue", **fields)
    monthly = billed * item.price
    amount = (monthly / ctx.catalogue.hours_per_month, monthly)
    return line(res, catalogue=ctx.catalogue, item=item, amount=amount, **fields)


def gke_load_balancer(res, ctx: PricingContext) -> tuple[PriceLine, ...]:
    """Internet egress of the replies, and the load balancer's processing of requests and replies."""
    t = Traffic.of(ctx.assumptions)
    egress = charge(res, ctx, "internet-egress", t.gib(t.reply_bytes), 0.0, f"{t.reply_bytes:,.0f} B out")
    both = t.request_bytes + t.reply_bytes
    processed = charge(res, ctx, "lb-data-processing", t.gib(both), 0.0, f"{both:,.0f} B in and out")
    return egress, processed


def gke_logging(res, ctx: PricingContext) -> PriceLine:
    """The access log's Cloud Logging ingestion beyond the project's free allotment."""
    t = Traffic.of(ctx.assumptions)
    item = ctx.find("usage", "cloud-logging")
    free = float(item.extra.get("free_quantity", 0.0)) if item else 0.0
    return charge(res, ctx, "cloud-logging", t.gib(t.log_bytes), free, f"{t.log_bytes:,.0f} B of log")


def droplet_transfer(res, ctx: PricingContext, included_gib: float) -> PriceLine:
    """Outbound transfer beyond what the droplet includes (pooled per account; one droplet assumed alone)."""
    t = Traffic.of(ctx.assumptions)
    return charge(res, ctx, "transfer-overage", t.gib(t.reply_bytes), included_gib, f"{t.reply_bytes:,.0f} B out")
