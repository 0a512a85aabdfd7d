"""Pricers for DigitalOcean: droplets (and their backups), registry tiers, reserved IPs, load balancers."""

from __future__ import annotations

from infra.costs.context import PricingContext
from infra.costs.estimate import Line, priced_line, unpriced_line


def _priced(
    ctx: PricingContext,
    res,
    kind: str,
    name: str,
    component: str,
    quantity: float,
    unit: str,
    category: str,
    vcpus: bool = False,
    note: str = "",
) -> Line:
    item = ctx.catalogue.find(kind, name)
    if item is None:
        return unpriced_line(res, component, f"no price for {kind} {name!r} in the catalogue", quantity, unit, category)
    return priced_line(
        ctx.catalogue,
        res,
        item,
        component,
        quantity,
        unit,
        category,
        vcpus_each=float(item.extra.get("vcpus", 0)) if vcpus else 0.0,
        note=note,
    )


def droplet_lines(res, ctx: PricingContext) -> list[Line]:
    """A droplet at its size's monthly cap; weekly backups add a fixed fraction of that price."""
    size = str(res.inputs.get("size") or "")
    lines = [_priced(ctx, res, "droplet", size, f"droplet {size}", 1, "droplet", "compute", vcpus=True)]
    if res.inputs.get("backups"):
        backup = ctx.catalogue.find("droplet-backups", "weekly")
        base = lines[0]
        if backup is None or base.monthly is None:
            lines.append(unpriced_line(res, "weekly backups", "backups need a priced droplet and backup rate"))
        else:
            lines.append(
                Line(
                    type=res.type,
                    name=res.name,
                    component="weekly backups",
                    quantity=1,
                    quantity_max=1,
                    unit="droplet",
                    category="storage",
                    unit_price=backup.price,
                    price_unit="fraction",
                    hourly=base.hourly * backup.price,
                    hourly_max=base.hourly_max * backup.price,
                    monthly=base.monthly * backup.price,
                    monthly_max=base.monthly_max * backup.price,
                    item=backup.id,
                    note=backup.extra.get("note", ""),
                )
            )
    return lines


def registry_lines(res, ctx: PricingContext) -> list[Line]:
    tier = str(res.inputs.get("subscriptionTierSlug") or "")
    return [_priced(ctx, res, "registry", tier, f"registry tier {tier}", 1, "registry", "storage")]


def reserved_ip_lines(res, ctx: PricingContext) -> list[Line]:
    """Free while assigned: assigned via its dropletId or by a ReservedIpAssignment in the same plan."""
    assigned = bool(res.inputs.get("dropletId")) or bool(
        ctx.resources("digitalocean:index/reservedIpAssignment:ReservedIpAssignment")
    )
    state = "assigned" if assigned else "unassigned"
    return [_priced(ctx, res, "reserved-ip", state, f"reserved IPv4 ({state})", 1, "IP", "network")]


def load_balancer_lines(res, ctx: PricingContext) -> list[Line]:
    units = int(res.inputs.get("sizeUnit") or 1)
    return [_priced(ctx, res, "load-balancer", "lb-small", f"load balancer x{units} node(s)", units, "node", "network")]


PRICERS = {
    "digitalocean:index/droplet:Droplet": droplet_lines,
    "digitalocean:index/containerRegistry:ContainerRegistry": registry_lines,
    "digitalocean:index/reservedIp:ReservedIp": reserved_ip_lines,
    "digitalocean:index/loadBalancer:LoadBalancer": load_balancer_lines,
}
