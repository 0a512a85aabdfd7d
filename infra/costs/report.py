"""The report: one JSON-ready dict for all stacks (comparison, cost per 1M predictions, break-even, budget).

The text tables and the chart are drawn from this dict, so `--json` and the table can never disagree.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from infra.costs.breakeven import break_even
from infra.costs.catalogue import Catalogue
from infra.costs.estimate import USAGE, StackEstimate
from infra.costs.measured import CapacityRecord

STALE_DAYS = 90  # older prices get a one-line warning suggesting --refresh


def shown(path: Path) -> str:
    """Paths inside the repository are shown relative to it, so the README table reads the same anywhere."""
    from robojam_format.layout import REPO_ROOT

    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def cost_per_million(hourly: float, rps: float | None) -> float | None:
    """Dollars per million predictions at `rps` requests/s for `hourly` dollars an hour."""
    if not rps or rps <= 0 or hourly <= 0:
        return None
    return hourly / (rps * 3600) * 1e6


def _comparison_row(estimate: StackEstimate, rate: float | None) -> dict:
    t = estimate.totals
    runs = estimate.training_runs
    serving = estimate.serving
    row = {
        "stack": estimate.stack,
        "target": estimate.target,
        "hourly": t.hourly,
        "hourly_max": t.hourly_max,
        "monthly": t.monthly,
        "monthly_max": t.monthly_max,
        "unpriced": t.unpriced,
        "serving_vcpus": None,
        "serving_vcpus_max": None,
        "capacity_rps": None,
        "capacity_rps_max": None,
        "cost_per_million": None,  # a training stack does not serve, so it has no cost per prediction
        "cost_per_million_max": None,
        "usage_per_million": None,  # usage charges (egress, load balancing, logging) per 1M at the assumed traffic
        "training_run": runs[0].to_dict() if runs else None,
    }
    requests = estimate.assumptions.get("requests_per_month")
    if serving and requests:
        usage = sum(line.monthly for line in estimate.lines if line.category == USAGE and line.counted)
        row["usage_per_million"] = usage / requests * 1e6
    if serving and serving.steps:
        low, high = serving.steps[0], serving.steps[-1]
        row.update(serving_vcpus=low.serving_vcpus, serving_vcpus_max=high.serving_vcpus)
        if rate:
            rps_lo, rps_hi = (serving.requests_per_second(step, rate) for step in (low, high))
            row.update(
                capacity_rps=rps_lo,
                capacity_rps_max=rps_hi,
                cost_per_million=cost_per_million(low.hourly, rps_lo),
                cost_per_million_max=cost_per_million(high.hourly, rps_hi),
            )
    return row


def catalogue_age(catalogue: Catalogue, today: dt.date) -> dict:
    """The oldest price in the catalogue, its age, and the one-line warning when it is older than STALE_DAYS."""
    oldest = catalogue.oldest_price()
    age = (today - oldest.price_date).days
    warning = None
    if age > STALE_DAYS:
        warning = (
            f"warning: the oldest price in the catalogue ({oldest.id}, {oldest.price_date}) is {age} days old; "
            "run `python -m infra.costs --refresh` to update it"
        )
    return {"oldest_id": oldest.id, "oldest_date": oldest.price_date.isoformat(), "age_days": age, "warning": warning}


def build_report(
    estimates: list[StackEstimate],
    catalogue: Catalogue,
    capacity: CapacityRecord | None = None,
    max_monthly: float | None = None,
    today: dt.date | None = None,
    sizes: list[StackEstimate] | None = None,
) -> dict:
    """Everything the CLI prints, as plain JSON types (json.loads(json.dumps(report)) == report)."""
    today = today or dt.date.today()
    stacks = [e.to_dict() for e in estimates]
    rate = capacity.rate_per_vcpu if capacity else None
    comparison = [_comparison_row(e, rate) for e in estimates]
    assumptions = {
        k: {
            "value": estimates[0].assumptions[k] if estimates else catalogue.assumption(k),
            "why": v["why"],
            "flag": v.get("flag"),
        }
        for k, v in catalogue.assumptions.items()
    }
    report = {
        "currency": catalogue.currency,
        "hours_per_month": catalogue.hours_per_month,
        "today": today.isoformat(),
        "catalogue": {"path": shown(catalogue.path), "updated": catalogue.updated, **catalogue_age(catalogue, today)},
        "assumptions": assumptions,
        "capacity": capacity.to_dict() if capacity else None,
        "stacks": stacks,
        "comparison": comparison,
        "break_even": break_even(estimates, rate) if rate else None,
        "break_even_sizes": break_even(sizes, rate) if rate and sizes else None,  # --sizes: droplet sizes, GKE nodes
        "budget": None,
    }
    if max_monthly is not None:
        over = [row["stack"] for row in comparison if row["monthly_max"] > max_monthly]
        report["budget"] = {"max_monthly": float(max_monthly), "over": over}
    return report


def budget_failures(report: dict) -> list[str]:
    """One sentence per stack whose (worst-case) monthly cost exceeds --max-monthly."""
    budget = report.get("budget")
    if not budget:
        return []
    rows = {row["stack"]: row for row in report["comparison"]}
    out = []
    for name in budget["over"]:
        run = rows[name]["training_run"]
        runs = f" ({run['runs_per_month']:g} training runs a month)" if run and run["monthly"] is not None else ""
        out.append(
            f"over budget: stack {name!r} costs up to ${rows[name]['monthly_max']:,.2f}/month{runs}, more than the "
            f"--max-monthly ${budget['max_monthly']:,.2f}"
        )
    return out
