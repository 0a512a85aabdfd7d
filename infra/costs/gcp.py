"""Pricers for Google Cloud: GCE VMs (machine, GPUs, boot disk, external IP), GKE, disks, storage."""

from __future__ import annotations

from dataclasses import replace

from infra.costs.context import PricingContext, basename, is_zone, region_of
from infra.costs.estimate import CREDIT, INCLUDED, Line, priced_line, unpriced_line


def is_spot(scheduling: dict | None) -> bool:
    scheduling = scheduling or {}
    return scheduling.get("provisioningModel") == "SPOT" or bool(scheduling.get("preemptible"))


def _line(
    ctx: PricingContext,
    res,
    kind: str,
    name: str,
    pricing: str,
    region: str | None,
    component: str,
    quantity: float,
    unit: str,
    category: str,
    quantity_max: float | None = None,
    vcpus: bool = False,
    note: str = "",
) -> Line:
    """Price (kind, name, pricing) from the catalogue, or an 'unpriced' line saying what is missing."""
    item, region_note = ctx.find(kind, name, pricing, region)
    if item is None:
        return unpriced_line(
            res,
            component,
            f"no {pricing} price for {kind} {name!r} in the catalogue",
            quantity,
            unit,
            category,
            quantity_max=quantity_max,
        )
    if item.retired:
        return unpriced_line(
            res,
            component,
            f"{item.extra.get('label', name)} retired since {item.retired}; it can no longer be rented",
            quantity,
            unit,
            category,
            quantity_max=quantity_max,
        )
    note = "; ".join(n for n in (note, region_note) if n)
    return priced_line(
        ctx.catalogue,
        res,
        item,
        component,
        quantity,
        unit,
        category,
        quantity_max,
        vcpus_each=float(item.extra.get("vcpus", 0)) if vcpus else 0.0,
        note=note,
    )


def machine_lines(
    ctx: PricingContext,
    res,
    machine: str,
    pricing: str,
    region: str | None,
    count: float,
    count_max: float,
    accelerators: list | None,
    unit: str,
) -> list[Line]:
    """Machine type plus attached GPUs; a GPU the machine type's price includes (g2 + L4) is not added."""
    tag = f" ({pricing})" if pricing == "spot" else ""
    lines = [
        _line(
            ctx,
            res,
            "machine",
            machine,
            pricing,
            region,
            f"{machine}{tag}",
            count,
            unit,
            "compute",
            count_max,
            vcpus=True,
        )
    ]
    item, _ = ctx.find("machine", machine, pricing, region)
    included = dict((item.extra.get("includes_gpu") or {}) if item else {})
    gpus: dict[str, int] = {}
    for acc in accelerators or []:
        gpus[basename(acc.get("type"))] = gpus.get(basename(acc.get("type")), 0) + int(acc.get("count", 1) or 0)
    if included and included["type"] not in gpus:
        gpus[included["type"]] = 0
    for gpu, per_machine in gpus.items():
        free = int(included["count"]) if included.get("type") == gpu else 0
        if free:
            lines.append(
                Line(
                    type=res.type,
                    name=res.name,
                    component=f"GPU {gpu} x{free}",
                    quantity=free * count,
                    quantity_max=free * count_max,
                    unit="GPU",
                    category="gpu",
                    status=INCLUDED,
                    hourly=0.0,
                    hourly_max=0.0,
                    monthly=0.0,
                    monthly_max=0.0,
                    note=f"included in the {machine} price",
                )
            )
        extra = max(0, per_machine - free)
        if extra:
            lines.append(
                _line(
                    ctx,
                    res,
                    "gpu",
                    gpu,
                    pricing,
                    region,
                    f"GPU {gpu} x{extra}{tag}",
                    extra * count,
                    "GPU",
                    "gpu",
                    extra * count_max,
                )
            )
    return lines


def instance_lines(res, ctx: PricingContext, pricing: str | None = None) -> list[Line]:
    """A GCE VM at its own provisioning model, or at `pricing` to compare on-demand with spot."""
    inputs = res.inputs
    pricing = pricing or ("spot" if is_spot(inputs.get("scheduling")) else "on-demand")
    region = region_of(inputs.get("zone")) or ctx.region
    machine = basename(inputs.get("machineType"))
    lines = machine_lines(ctx, res, machine, pricing, region, 1, 1, inputs.get("guestAccelerators"), "VM")
    params = (inputs.get("bootDisk") or {}).get("initializeParams") or {}
    disk_type = basename(params.get("type")) or "pd-standard"
    size = params.get("size")
    note = "" if size else f"size not set: assumed {ctx.assumptions['boot_disk_gb']:g} GB (image default)"
    size = float(size or ctx.assumptions["boot_disk_gb"])
    lines.append(
        _line(
            ctx,
            res,
            "disk",
            disk_type,
            "on-demand",
            region,
            f"boot disk {disk_type} {size:g} GB",
            size,
            "GB",
            "storage",
            note=note,
        )
    )
    ips = sum(len(nic.get("accessConfigs") or []) for nic in inputs.get("networkInterfaces") or [])
    if ips:
        lines.append(_line(ctx, res, "ip", "external-ipv4", pricing, region, "external IPv4", ips, "IP", "network"))
    return lines


def disk_lines(res, ctx: PricingContext) -> list[Line]:
    inputs = res.inputs
    disk_type = basename(inputs.get("type")) or "pd-standard"
    size = float(inputs.get("size") or ctx.assumptions["boot_disk_gb"])
    return [
        _line(
            ctx,
            res,
            "disk",
            disk_type,
            "on-demand",
            region_of(inputs.get("zone")),
            f"disk {disk_type} {size:g} GB",
            size,
            "GB",
            "storage",
        )
    ]


def _cluster_for(pool, ctx: PricingContext):
    """The node pool's cluster resource: matched by name, else the stack's only cluster."""
    clusters = ctx.resources("gcp:container/cluster:Cluster")
    ref = basename(pool.inputs.get("cluster"))
    for cluster in clusters:
        if ref and ref in (cluster.name, cluster.inputs.get("name")):
            return cluster
    return clusters[0] if len(clusters) == 1 else None


def _zones(location, node_locations, ctx: PricingContext) -> int:
    if node_locations:
        return len(node_locations)
    return 1 if is_zone(location) else int(ctx.assumptions["regional_cluster_zones"])


def nodes_lines(res, ctx: PricingContext, node_config: dict | None, lo: float, hi: float, note: str) -> list[Line]:
    """Nodes of one pool: machines, boot disks and node external IPs, at the low and high node count."""
    cfg = node_config or {}
    pricing = "spot" if cfg.get("spot") or cfg.get("preemptible") else "on-demand"
    machine = basename(cfg.get("machineType")) or "e2-medium"
    lines = machine_lines(ctx, res, machine, pricing, ctx.region, lo, hi, cfg.get("guestAccelerators"), "node")
    lines[0] = _with_note(lines[0], note)
    disk_type = basename(cfg.get("diskType")) or "pd-balanced"
    size = float(cfg.get("diskSizeGb") or ctx.assumptions["gke_node_disk_gb"])
    lines.append(
        _line(
            ctx,
            res,
            "disk",
            disk_type,
            "on-demand",
            ctx.region,
            f"node boot disk {disk_type} {size:g} GB",
            size * lo,
            "GB",
            "storage",
            size * hi,
        )
    )
    lines.append(
        _line(
            ctx,
            res,
            "ip",
            "external-ipv4",
            pricing,
            ctx.region,
            "node external IPv4",
            lo,
            "IP",
            "network",
            hi,
            note="public nodes get one each",
        )
    )
    return lines


def _with_note(line: Line, note: str) -> Line:
    return replace(line, note="; ".join(n for n in (note, line.note) if n))


def node_pool_lines(res, ctx: PricingContext) -> list[Line]:
    """A node pool priced at its autoscaling minimum and maximum (per-zone counts times zones)."""
    inputs = res.inputs
    cluster = _cluster_for(res, ctx)
    location = inputs.get("location") or (cluster.inputs.get("location") if cluster else None)
    node_locations = inputs.get("nodeLocations") or (cluster.inputs.get("nodeLocations") if cluster else None)
    zones = _zones(location, node_locations, ctx)
    auto = inputs.get("autoscaling") or {}
    if auto.get("totalMinNodeCount") is not None or auto.get("totalMaxNodeCount") is not None:
        lo, hi = int(auto.get("totalMinNodeCount") or 0), int(auto.get("totalMaxNodeCount") or 0)
        note = f"autoscaling {lo}-{hi} nodes in total"
    elif auto:
        lo, hi = int(auto.get("minNodeCount") or 0) * zones, int(auto.get("maxNodeCount") or 0) * zones
        per_zone = f"{auto.get('minNodeCount') or 0}-{auto.get('maxNodeCount') or 0}"
        note = f"autoscaling {per_zone} nodes per zone x {zones}"
    else:
        per_zone = int(inputs.get("nodeCount") or inputs.get("initialNodeCount") or 1)
        lo = hi = per_zone * zones
        note = f"{per_zone} node(s) per zone x {zones} zone(s)"
    return nodes_lines(res, ctx, inputs.get("nodeConfig"), lo, hi, note)


def cluster_lines(res, ctx: PricingContext) -> list[Line]:
    """GKE management fee, the free-tier credit for one zonal/Autopilot cluster, and a kept default pool."""
    inputs = res.inputs
    location = inputs.get("location") or ctx.config.get("gcp:zone") or ctx.region
    zonal = is_zone(location)
    autopilot = bool(inputs.get("enableAutopilot"))
    kind = "Autopilot" if autopilot else ("zonal" if zonal else "regional")
    fee, _ = ctx.find("gke", "cluster-management-fee")
    lines = [
        _line(
            ctx,
            res,
            "gke",
            "cluster-management-fee",
            "on-demand",
            None,
            f"cluster management fee ({kind}, {basename(location)})",
            1,
            "cluster",
            "management",
            note="" if (zonal or autopilot) else "regional clusters get no free-tier credit",
        )
    ]
    credit, _ = ctx.find("gke", "free-tier-credit")
    if fee and credit and (zonal or autopilot) and ctx.gke_credit_left > 0:
        fee_month = fee.price * ctx.catalogue.hours_per_month
        amount = min(ctx.gke_credit_left, fee_month)
        ctx.gke_credit_left = 0.0  # the free tier covers one cluster per billing account
        lines.append(
            Line(
                type=res.type,
                name=res.name,
                component="GKE free tier credit",
                quantity=1,
                quantity_max=1,
                unit="cluster",
                category="credit",
                status=CREDIT,
                unit_price=-credit.price,
                price_unit="month",
                hourly=-amount / ctx.catalogue.hours_per_month,
                hourly_max=-amount / ctx.catalogue.hours_per_month,
                monthly=-amount,
                monthly_max=-amount,
                item=credit.id,
                note=f"${credit.price:.2f}/month per billing account for one {kind} cluster, "
                "capped at the fee; assumes no other zonal cluster uses it",
            )
        )
    if not autopilot and not inputs.get("removeDefaultNodePool"):
        per_zone = int(inputs.get("initialNodeCount") or 3)
        zones = _zones(location, inputs.get("nodeLocations"), ctx)
        lines += nodes_lines(
            res,
            ctx,
            inputs.get("nodeConfig"),
            per_zone * zones,
            per_zone * zones,
            f"default node pool: {per_zone} node(s) per zone x {zones} zone(s)",
        )
    return lines


def forwarding_rule_lines(res, ctx: PricingContext, component: str = "forwarding rule") -> list[Line]:
    return [
        _line(
            ctx,
            res,
            "forwarding-rule",
            "forwarding-rule",
            "on-demand",
            region_of(res.inputs.get("region")),
            component,
            1,
            "rule",
            "network",
        )
    ]


def address_lines(res, ctx: PricingContext) -> list[Line]:
    return [
        _line(
            ctx,
            res,
            "ip",
            "external-ipv4",
            "on-demand",
            region_of(res.inputs.get("region")),
            "static external IPv4",
            1,
            "IP",
            "network",
            note="assumes it is in use (unused ones cost more)",
        )
    ]


def bucket_lines(res, ctx: PricingContext) -> list[Line]:
    cls = str(res.inputs.get("storageClass") or "STANDARD").upper()
    gb = ctx.assumptions["bucket_storage_gb"]
    return [
        _line(
            ctx,
            res,
            "bucket-storage",
            cls,
            "on-demand",
            region_of(res.inputs.get("location")),
            f"{cls} storage {gb:g} GB (assumed)",
            gb,
            "GB",
            "storage",
            note=f"{gb:g} GB is an assumption (--bucket-gb)",
        )
    ]


def registry_lines(res, ctx: PricingContext) -> list[Line]:
    gb = ctx.assumptions["registry_storage_gb"]
    return [
        _line(
            ctx,
            res,
            "registry-storage",
            "artifact-registry",
            "on-demand",
            region_of(res.inputs.get("location")),
            f"image storage {gb:g} GB (assumed)",
            gb,
            "GB",
            "storage",
            note=f"{gb:g} GB is an assumption (--registry-gb)",
        )
    ]


PRICERS = {
    "gcp:compute/instance:Instance": instance_lines,
    "gcp:compute/disk:Disk": disk_lines,
    "gcp:container/cluster:Cluster": cluster_lines,
    "gcp:container/nodePool:NodePool": node_pool_lines,
    "gcp:compute/forwardingRule:ForwardingRule": forwarding_rule_lines,
    "gcp:compute/globalForwardingRule:GlobalForwardingRule": forwarding_rule_lines,
    "gcp:compute/address:Address": address_lines,
    "gcp:compute/globalAddress:GlobalAddress": address_lines,
    "gcp:storage/bucket:Bucket": bucket_lines,
    "gcp:artifactregistry/repository:Repository": registry_lines,
}
