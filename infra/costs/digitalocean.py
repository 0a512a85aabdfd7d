"""Pricers for what the program creates on DigitalOcean: the droplet (and backups), the registry, a reserved IP."""

from __future__ import annotations

from infra.costs import capacity, usage
from infra.costs.context import PricingContext
from infra.costs.estimate import Priced, line
from infra.costs.serving import CapacityStep
from infra.tables import resource_types as types

RESERVED_IP_ASSIGNMENT = types.DO_RESERVED_IP_ASSIGNMENT


def droplet_lines(res, ctx: PricingContext) -> Priced:
    """A droplet at its size's list price, its one capacity step and its transfer beyond the included allowance;
    backups add a fraction of its price.

    Backups are daily unless the backup policy says weekly.
    """
    size = str(res.inputs.get("size") or "")
    base = ctx.priced(res, "droplet", size, component=f"droplet {size}", unit="droplet", category="compute")
    lines = [base]
    item = ctx.find("droplet", size)
    serving = None
    if item is not None:
        steps = [CapacityStep(units=1, serving_vcpus=capacity.sustained_vcpus(item))]
        serving = capacity.serving("droplet", item, steps)
        lines.append(usage.droplet_transfer(res, ctx, float(item.extra.get("transfer_gib", 0))))
    if res.inputs.get("backups"):
        plan = str((res.inputs.get("backupPolicy") or {}).get("plan") or "daily")  # DigitalOcean's default
        rate = ctx.find("droplet-backups", plan)
        fields = {"component": f"{plan} backups", "unit": "droplet", "category": "storage"}
        if rate is None or not base.counted:
            lines.append(line(res, catalogue=ctx.catalogue, missing="backups need a priced droplet and rate", **fields))
        else:
            amount = (base.hourly * rate.price, base.monthly * rate.price)
            note = "no backupPolicy: DigitalOcean backs up daily" if plan == "daily" else ""
            lines.append(line(res, catalogue=ctx.catalogue, item=rate, amount=amount, note=note, **fields))
    return Priced(tuple(lines), serving)


def registry_lines(res, ctx: PricingContext) -> Priced:
    """The registry tier; storage beyond the tier's allowance costs extra, or does not fit at all (Starter)."""
    tier = str(res.inputs.get("subscriptionTierSlug") or "")
    gb = ctx.assumptions["registry_storage_gb"]
    item = ctx.find("registry", tier)
    lines = [ctx.priced(res, "registry", tier, component=f"registry tier {tier}", unit="registry", category="storage")]
    if item is None or "storage_gib" not in item.extra:
        return Priced(tuple(lines))
    allowance = float(item.extra["storage_gib"])
    over = gb - allowance
    if over <= 0:
        return Priced(tuple(lines))
    if not item.extra.get("extra_storage"):
        warning = (
            f"{res.name}: registry tier {tier} holds {allowance:.2f} GB with no extra storage, less than the "
            f"{gb:g} GB of images assumed (--registry-gb): pushes would fail{_roomier_tier(ctx, gb)}"
        )
        return Priced(tuple(lines), warnings=(warning,))
    note = f"{gb:g} GB assumed (--registry-gb), {allowance:g} GB included in the {tier} tier"
    lines.append(
        ctx.priced(
            res,
            "registry-storage",
            "extra",
            component=f"extra storage {over:g} GB",
            quantity=over,
            unit="GB",
            category="storage",
            note=note,
        )
    )
    return Priced(tuple(lines))


def _roomier_tier(ctx: PricingContext, gb: float) -> str:
    tiers = sorted((i for i in ctx.catalogue.items if i.kind == "registry"), key=lambda i: i.price)
    roomy = next((i for i in tiers if float(i.extra.get("storage_gib", 0)) >= gb), None)
    return (
        f"; the {roomy.name} tier (${roomy.price:.2f}/month) holds {roomy.extra['storage_gib']:g} GB" if roomy else ""
    )


def reserved_ip_lines(res, ctx: PricingContext) -> Priced:
    """Free while assigned: assigned via its dropletId or by a ReservedIpAssignment in the same plan."""
    assigned = bool(res.inputs.get("dropletId")) or bool(ctx.resources(RESERVED_IP_ASSIGNMENT))
    state = "assigned" if assigned else "unassigned"
    return Priced(
        (ctx.priced(res, "reserved-ip", state, component=f"reserved IPv4 ({state})", unit="IP", category="network"),)
    )


PRICERS = {
    types.DO_DROPLET: droplet_lines,
    types.DO_REGISTRY: registry_lines,
    types.DO_RESERVED_IP: reserved_ip_lines,
}
