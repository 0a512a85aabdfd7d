"""Price a Plan (what `pulumi up` would create, recorded under mocks): a pure function of plan + catalogue.

Each resource type goes to its provider's pricer; types the catalogue lists as free are recorded as free with
the reason; anything else becomes an 'unpriced' line, so a new resource can never slip in at $0.
"""

from __future__ import annotations

from infra.costs import digitalocean, gcp, kubernetes
from infra.costs.catalogue import Catalogue
from infra.costs.context import PricingContext, basename
from infra.costs.estimate import StackEstimate, unpriced_line

PRICERS = {**gcp.PRICERS, **digitalocean.PRICERS, **kubernetes.PRICERS}
GPU_VM = "gcp:compute/instance:Instance"


def effective_assumptions(catalogue: Catalogue, overrides: dict[str, float] | None = None) -> dict[str, float]:
    """The catalogue's documented usage assumptions, with CLI overrides (e.g. --registry-gb) applied."""
    values = {key: catalogue.assumption(key) for key in catalogue.assumptions}
    for key, value in (overrides or {}).items():
        if value is not None:
            if key not in values:
                raise KeyError(f"unknown assumption {key!r}")
            values[key] = float(value)
    return values


def _max_run_hours(inputs: dict) -> float | None:
    limit = (inputs.get("scheduling") or {}).get("maxRunDuration") or {}
    seconds = float(limit.get("seconds") or 0) + float(limit.get("nanos") or 0) / 1e9
    return seconds / 3600 if seconds > 0 else None


def _has_gpu(res, catalogue: Catalogue) -> bool:
    machine = catalogue.find("machine", basename(res.inputs.get("machineType")))
    return bool(res.inputs.get("guestAccelerators")) or bool(machine and machine.extra.get("includes_gpu"))


def training_run(res, ctx: PricingContext, train_hours: float | None) -> dict:
    """One training run on a GPU VM: hours x hourly rate, at on-demand and at spot prices."""
    limit = _max_run_hours(res.inputs)
    hours, source = (train_hours, "--train-hours") if train_hours is not None else (limit, "maxRunDuration")
    run = {
        "resource": res.name,
        "hours": hours,
        "hours_from": source if hours is not None else None,
        "provisioning": "spot" if gcp.is_spot(res.inputs.get("scheduling")) else "on-demand",
    }
    for pricing in ("on-demand", "spot"):
        lines = gcp.instance_lines(res, ctx, pricing)
        missing = [f"{line.component}: {line.note}" for line in lines if not line.counted]
        hourly = None if missing else sum(line.hourly for line in lines)
        cost = None if hourly is None or hours is None else hourly * hours
        run[pricing.replace("-", "_")] = {"hourly": hourly, "cost": cost, "unpriced": missing}
    return run


def price_plan(
    plan, catalogue: Catalogue, assumptions: dict[str, float] | None = None, train_hours: float | None = None
) -> StackEstimate:
    """Line items for every resource in the plan, the free resources, and any GPU VM's training-run cost."""
    values = assumptions or effective_assumptions(catalogue)
    credit = catalogue.find("gke", "free-tier-credit")
    ctx = PricingContext(catalogue, plan, values, gke_credit_left=credit.price if credit else 0.0)
    lines, free, runs = [], [], []
    for res in sorted(plan.resources, key=lambda r: (r.name, r.type)):  # registration order is async
        reason = catalogue.free_reason(res.type)
        pricer = PRICERS.get(res.type)
        if pricer is None and reason is None:
            lines.append(
                unpriced_line(res, res.type.rsplit(":", 1)[-1], f"resource type {res.type} is not in the catalogue")
            )
            continue
        produced = pricer(res, ctx) if pricer else []
        if not produced:
            free.append({"type": res.type, "name": res.name, "why": reason or "creates nothing billable"})
        lines += produced
        if res.type == GPU_VM and (_has_gpu(res, catalogue) or _max_run_hours(res.inputs)):
            runs.append(training_run(res, ctx, train_hours))
    target = str(ctx.config.get("robojam:target", ""))
    return StackEstimate(
        stack=plan.stack, target=target, lines=lines, free=free, training_runs=runs, assumptions=values
    )
