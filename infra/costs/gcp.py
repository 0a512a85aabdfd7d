"""Pricers for what the program creates on Google Cloud: the training VM, GKE, its LoadBalancer, storage."""

from __future__ import annotations

from dataclasses import replace

from infra.costs import capacity, usage
from infra.costs.context import PricingContext
from infra.costs.estimate import CREDIT, INCLUDED, Priced, PriceLine, line
from infra.costs.stack import basename, region_of_location
from infra.tables import resource_types as types

GKE_CLUSTER = types.GCP_CLUSTER
INSTANCE = types.GCP_INSTANCE
REPOSITORY = types.GCP_REPOSITORY
SERVICE = types.K8S_SERVICE


def is_spot(scheduling: dict | None) -> bool:
    scheduling = scheduling or {}
    return scheduling.get("provisioningModel") == "SPOT" or bool(scheduling.get("preemptible"))


def max_run_hours(inputs: dict) -> float | None:
    limit = (inputs.get("scheduling") or {}).get("maxRunDuration") or {}
    seconds = float(limit.get("seconds") or 0) + float(limit.get("nanos") or 0) / 1e9
    return seconds / 3600 if seconds > 0 else None


def machine_lines(ctx: PricingContext, res, machine: str, pricing: str, accelerators, **counts) -> list[PriceLine]:
    """Machine type plus attached GPUs; a GPU the machine type's price includes (g2 + L4) is not added."""
    tag = " (spot, indicative)" if pricing == "spot" else ""
    lo, hi = counts["quantity"], counts.get("quantity_max", counts["quantity"])
    lines = [ctx.priced(res, "machine", machine, pricing=pricing, component=f"{machine}{tag}", **counts)]
    item = ctx.find("machine", machine, pricing)
    included = dict((item.extra.get("includes_gpu") or {}) if item else {})
    gpus: dict[str, int] = {}
    for acc in accelerators or []:
        gpus[basename(acc.get("type"))] = gpus.get(basename(acc.get("type")), 0) + int(acc.get("count", 1) or 0)
    if included:
        gpus.setdefault(included["type"], 0)
    for gpu, per_machine in gpus.items():
        free = int(included["count"]) if included.get("type") == gpu else 0
        if free:
            lines.append(
                line(
                    res,
                    catalogue=ctx.catalogue,
                    status=INCLUDED,
                    component=f"GPU {gpu} x{free}",
                    quantity=free * lo,
                    quantity_max=free * hi,
                    unit="GPU",
                    category="gpu",
                    note=f"included in the {machine} price",
                )
            )
        if per_machine > free:
            extra = per_machine - free
            fields = {**counts, "quantity": extra * lo, "quantity_max": extra * hi, "unit": "GPU", "category": "gpu"}
            lines.append(ctx.priced(res, "gpu", gpu, pricing=pricing, component=f"GPU {gpu} x{extra}{tag}", **fields))
    return lines


def instance_lines(res, ctx: PricingContext, pricing: str | None = None) -> list[PriceLine]:
    """A GCE VM at its own provisioning model (or `pricing`): machine, GPUs, boot disk, external IP.

    A VM with a run limit bills machine, GPUs and IP only while it runs (runs a month x hours a run); its boot
    disk bills all month unless the limit deletes the VM (terminationAction DELETE).
    """
    inputs = res.inputs
    pricing = pricing or ("spot" if is_spot(inputs.get("scheduling")) else "on-demand")
    region = region_of_location(inputs.get("zone")) or ctx.region
    run_hours, why = run_hours_per_month(inputs, ctx)
    machine = basename(inputs.get("machineType"))
    counts = {"quantity": 1, "unit": "VM", "category": "compute", "region": region, "hours": run_hours}
    lines = machine_lines(ctx, res, machine, pricing, inputs.get("guestAccelerators"), **counts)
    if why:
        lines[0] = _with_note(lines[0], why)
    lines.append(boot_disk_line(res, ctx, region, run_hours))
    ips = sum(len(nic.get("accessConfigs") or []) for nic in inputs.get("networkInterfaces") or [])
    if ips:
        lines.append(
            ctx.priced(
                res,
                "ip",
                "external-ipv4",
                pricing=pricing,
                region=region,
                component="external IPv4",
                quantity=ips,
                unit="IP",
                category="network",
                hours=run_hours,
                note="ephemeral: released while the VM is stopped" if run_hours is not None else "",
            )
        )
    return lines


def boot_disk_line(res, ctx: PricingContext, region: str | None, run_hours: float | None) -> PriceLine:
    """The boot disk bills all month, also while the VM is stopped, unless the run limit deletes the VM."""
    params = (res.inputs.get("bootDisk") or {}).get("initializeParams") or {}
    disk_type = basename(params.get("type")) or "pd-standard"
    size = float(params.get("size") or 0)
    deleted = (res.inputs.get("scheduling") or {}).get("instanceTerminationAction") == "DELETE"
    if run_hours is None:
        hours, note = None, ""
    elif deleted:
        hours, note = run_hours, "deleted with the VM after each run"
    else:
        hours, note = None, "bills all month, also while the VM is stopped between runs"
    fields = {"component": f"boot disk {disk_type} {size:g} GB", "unit": "GB", "category": "storage"}
    if not size:
        return line(res, catalogue=ctx.catalogue, missing="the boot disk sets no size", **fields)
    return ctx.priced(res, "disk", disk_type, region=region, quantity=size, hours=hours, note=note, **fields)


def run_hours_per_month(inputs: dict, ctx: PricingContext) -> tuple[float | None, str]:
    """Hours a month a run-limited VM runs: runs per month x hours per run; None (all month) without a limit."""
    limit = max_run_hours(inputs)
    if limit is None:
        return None, ""
    hours = ctx.train_hours or limit
    runs = ctx.assumptions["runs_per_month"]
    source = "--train-hours" if ctx.train_hours else "maxRunDuration"
    return runs * hours, f"billed {runs:g} runs x {hours:g} h = {runs * hours:g} h/month (--runs-per-month, {source})"


def _with_note(item: PriceLine, note: str) -> PriceLine:
    return replace(item, note="; ".join(n for n in (item.note, note) if n))


def node_pool_lines(res, ctx: PricingContext) -> Priced:
    """A zonal node pool at its autoscaling minimum (raised until the pods fit) and maximum, and its capacity."""
    inputs = res.inputs
    auto = inputs.get("autoscaling") or {}
    lo = int(auto.get("minNodeCount") or 0) if auto else int(inputs.get("nodeCount") or 1)
    hi = int(auto.get("maxNodeCount") or lo) if auto else lo
    cfg = inputs.get("nodeConfig") or {}
    pricing = "spot" if cfg.get("spot") or cfg.get("preemptible") else "on-demand"
    machine = basename(cfg.get("machineType")) or "e2-medium"
    item = ctx.find("machine", machine, pricing)
    work = capacity.workload(ctx.plan)
    note = f"autoscaling {lo}-{hi} nodes"
    serving, warnings = None, ()
    if item is not None and work is not None:
        fit = capacity.gke_fit(item, ctx.catalogue, work, lo, hi)
        note += f"; {fit.note}"
        if fit.effective_min is None:
            warnings = (f"{res.name}: {fit.note}",)
        else:
            lo = fit.effective_min
        if fit.steps and fit.steps[-1].units < hi:  # no pending pod ever asks the autoscaler for more nodes
            note += f"; the HPA's {fit.steps[-1].replicas} replicas fit on {fit.steps[-1].units}: never {hi} nodes"
            hi = fit.steps[-1].units
        serving = capacity.serving("node", item, fit.steps)
    counts = {"quantity": lo, "quantity_max": hi}
    lines = machine_lines(
        ctx, res, machine, pricing, cfg.get("guestAccelerators"), unit="node", category="compute", **counts
    )
    lines[0] = _with_note(lines[0], note)
    disk_type = basename(cfg.get("diskType")) or "pd-balanced"
    size = float(cfg.get("diskSizeGb") or ctx.assumptions["gke_node_disk_gb"])
    lines.append(
        ctx.priced(
            res,
            "disk",
            disk_type,
            component=f"node boot disk {disk_type} {size:g} GB",
            quantity=size * lo,
            quantity_max=size * hi,
            unit="GB",
            category="storage",
        )
    )
    lines.append(
        ctx.priced(
            res,
            "ip",
            "external-ipv4",
            pricing=pricing,
            component="node external IPv4",
            unit="IP",
            category="network",
            note="public nodes get one each",
            **counts,
        )
    )
    return Priced(tuple(lines), serving, warnings)


def _is_cluster(res) -> bool:
    return res.type == GKE_CLUSTER


def cluster_lines(res, ctx: PricingContext) -> Priced:
    """GKE's management fee for the zonal cluster, and the free tier's credit (one zonal cluster per account).

    The credit goes to the first cluster in billing order; every cluster's fee is the same catalogue price.
    """
    location = basename(res.inputs.get("location") or ctx.stack.gcp_zone)
    fee = ctx.priced(
        res,
        "gke",
        "cluster-management-fee",
        component=f"cluster management fee ({location})",
        unit="cluster",
        category="management",
    )
    credit = ctx.find("gke", "free-tier-credit")
    account_credit = ctx.catalogue.find("gke", "free-tier-credit")  # $/month the billing account gets
    allowance = account_credit.price if account_credit and ctx.before(res, _is_cluster) == 0 else 0.0
    logging = usage.gke_logging(res, ctx)
    if not fee.counted or credit is None or allowance <= 0:
        return Priced((fee, logging))
    amount = min(allowance, fee.monthly)
    hours = ctx.catalogue.hours_per_month
    grant = line(
        res,
        catalogue=ctx.catalogue,
        item=credit,
        status=CREDIT,
        component="GKE free tier credit",
        unit="cluster",
        category="credit",
        amount=(-amount / hours, -amount),
        note=f"${credit.price:.2f}/month per billing account for one zonal cluster, capped at the fee; "
        "assumes no other zonal cluster uses it",
    )
    return Priced((fee, grant, logging))


def _is_load_balancer(res) -> bool:
    return res.type == SERVICE and (res.inputs.get("spec") or {}).get("type") == "LoadBalancer"


def service_lines(res, ctx: PricingContext) -> Priced:
    """A `type: LoadBalancer` Service on GKE makes one network load balancer forwarding rule; the first one also
    carries the usage charges of the assumed traffic (egress, data processing).

    Google charges one flat rate for the first five rules of a project and region, then a rate per extra rule;
    rules are numbered in billing order.
    """
    if not _is_load_balancer(res):
        return Priced()
    if not ctx.resources(GKE_CLUSTER):
        missing = "no GKE cluster in this stack tells which load balancer it creates"
        fields = {"component": "LoadBalancer Service", "unit": "rule", "category": "network"}
        return Priced((line(res, catalogue=ctx.catalogue, missing=missing, **fields),))
    nth = ctx.before(res, _is_load_balancer) + 1
    component = f"LoadBalancer Service: forwarding rule #{nth}"
    fields = {"component": component, "unit": "rule", "category": "network"}
    if nth == 1:
        rule = ctx.priced(res, "forwarding-rule", "first-five", note="flat rate for rules 1-5", **fields)
    elif nth <= 5:
        first = ctx.find("forwarding-rule", "first-five")
        note = "inside the flat rate for the first five rules"
        rule = line(res, catalogue=ctx.catalogue, item=first, amount=(0.0, 0.0), note=note, **fields)
    else:
        rule = ctx.priced(res, "forwarding-rule", "additional", note="beyond the first five rules", **fields)
    traffic = usage.gke_load_balancer(res, ctx) if nth == 1 else ()  # the traffic is counted once, on rule #1
    return Priced((rule, *traffic))


def bucket_lines(res, ctx: PricingContext) -> Priced:
    cls = str(res.inputs.get("storageClass") or "STANDARD").upper()
    gb = ctx.assumptions["bucket_storage_gb"]
    return Priced(
        (
            ctx.priced(
                res,
                "bucket-storage",
                cls,
                region=region_of_location(res.inputs.get("location")),
                component=f"{cls} storage {gb:g} GB (assumed)",
                quantity=gb,
                unit="GB",
                category="storage",
                note=f"{gb:g} GB is an assumption (--bucket-gb); operations and egress are not included",
            ),
        )
    )


def _is_repository(res) -> bool:
    return res.type == REPOSITORY


def registry_lines(res, ctx: PricingContext) -> Priced:
    """Artifact Registry storage beyond the free 0.5 GB, which the billing account gets once, not per repository.

    Repositories use the free allowance in billing order, each taking up to its assumed storage.
    """
    gb = ctx.assumptions["registry_storage_gb"]
    account = ctx.catalogue.find("registry-storage", "artifact-registry")
    left = float(account.extra.get("free_quantity", 0.0)) if account else 0.0
    for _ in range(ctx.before(res, _is_repository)):
        left -= min(gb, left)  # what each earlier repository took
    free = min(gb, left)
    note = f"{gb:g} GB is an assumption (--registry-gb)"
    note += f"; {free:g} GB of it inside the account's free 0.5 GB" if free else "; the account's free 0.5 GB is used"
    return Priced(
        (
            ctx.priced(
                res,
                "registry-storage",
                "artifact-registry",
                region=region_of_location(res.inputs.get("location")),
                component=f"image storage {gb:g} GB (assumed)",
                quantity=gb - free,
                unit="GB",
                category="storage",
                note=note,
            ),
        )
    )


def _instance(res, ctx: PricingContext) -> Priced:
    return Priced(tuple(instance_lines(res, ctx)))


PRICERS = {
    INSTANCE: _instance,
    GKE_CLUSTER: cluster_lines,
    types.GCP_NODE_POOL: node_pool_lines,
    types.GCP_BUCKET: bucket_lines,
    REPOSITORY: registry_lines,
    SERVICE: service_lines,
}
