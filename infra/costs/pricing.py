"""Price a Plan (what `pulumi up` would create, recorded under mocks): a pure function of plan + catalogue.

Each resource type goes to its provider's pricer; types the catalogue lists as free are recorded as free with
the reason; anything else becomes an 'unpriced' line, so a new resource can never slip in at $0.
"""

from __future__ import annotations

from dataclasses import replace

from infra.costs import digitalocean, gcp, scheduled_jobs
from infra.costs.catalogue import Catalogue
from infra.costs.context import PricingContext, billing_order
from infra.costs.estimate import FreeResource, Priced, StackEstimate, line
from infra.costs.stack import basename, stack_facts
from infra.costs.training import training_run
from infra.tables import resource_types as types

PRICERS = {**gcp.PRICERS, **digitalocean.PRICERS, **scheduled_jobs.PRICERS}
GPU_VM = types.GCP_INSTANCE


def effective_assumptions(catalogue: Catalogue, overrides: dict[str, float] | None = None) -> dict[str, float]:
    """The catalogue's documented usage assumptions, with CLI overrides (e.g. --registry-gb) applied."""
    values = {key: catalogue.assumption(key) for key in catalogue.assumptions}
    for key, value in (overrides or {}).items():
        if value is not None:
            if key not in values:
                raise KeyError(f"unknown assumption {key!r}")
            values[key] = float(value)
    return values


def _has_gpu(res, catalogue: Catalogue) -> bool:
    machine = catalogue.find("machine", basename(res.inputs.get("machineType")))
    return bool(res.inputs.get("guestAccelerators")) or bool(machine and machine.extra.get("includes_gpu"))


def price_plan(
    plan, catalogue: Catalogue, assumptions: dict[str, float] | None = None, train_hours: float | None = None
) -> StackEstimate:
    """Line items for every resource in the plan, the free resources, training runs and serving capacity."""
    values = assumptions or effective_assumptions(catalogue)
    ctx = PricingContext(catalogue, plan, values, stack=stack_facts(plan), train_hours=train_hours)
    lines, free, vms, warnings = [], [], [], []
    serving = None
    for res in billing_order(plan):
        reason = catalogue.free_reason(res.type)
        pricer = PRICERS.get(res.type)
        if pricer is None and reason is None:
            lines.append(
                line(
                    res,
                    catalogue=catalogue,
                    component=res.type.rsplit(":", 1)[-1],
                    unit="",
                    category="other",
                    missing=f"resource type {res.type} is not in the catalogue",
                )
            )
            continue
        produced = pricer(res, ctx) if pricer else Priced()
        if not produced.lines:
            free.append(FreeResource(res.type, res.name, reason or "creates nothing billable"))
        lines += produced.lines
        warnings += produced.warnings
        if produced.serving is not None:
            serving = produced.serving
        if res.type == GPU_VM and (_has_gpu(res, catalogue) or gcp.max_run_hours(res.inputs)):
            vms.append(res)
    estimate = StackEstimate(stack=plan.stack, target=ctx.stack.target, lines=tuple(lines), free=tuple(free))
    totals = estimate.totals
    runs = tuple(training_run(res, ctx).with_month(totals.monthly) for res in vms)
    if serving is not None:  # each size's cost without the usage charges, which follow the traffic instead
        fixed = estimate.fixed_totals
        serving = serving.priced((fixed.hourly, fixed.hourly_max), (fixed.monthly, fixed.monthly_max))
    return replace(estimate, training_runs=runs, serving=serving, warnings=tuple(warnings), assumptions=values)
