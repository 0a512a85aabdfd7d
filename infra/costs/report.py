"""The report: one JSON-ready dict for all stacks (comparison, cost per million predictions, budget verdict).

The text tables and the chart are drawn from this dict, so `--json` and the table can never disagree.
"""

from __future__ import annotations

import json
from pathlib import Path

from infra.costs.catalogue import Catalogue
from infra.costs.estimate import StackEstimate

BENCHMARK_KEY = "requests_per_second_per_vcpu"


class BenchmarkError(ValueError):
    """The benchmark result file exists but has no usable requests/s per vCPU."""


def read_benchmark(path: Path) -> dict | None:
    """{'path', 'requests_per_second_per_vcpu'} from the benchmark file, or None when there is none."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BenchmarkError(f"benchmark file {path} is not readable JSON ({exc})") from None
    rate = data.get(BENCHMARK_KEY) if isinstance(data, dict) else None
    if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
        raise BenchmarkError(f"benchmark file {path} has no positive number under {BENCHMARK_KEY!r}")
    return {"path": _shown(path), BENCHMARK_KEY: float(rate)}


def _shown(path: Path) -> str:
    """Paths inside the repository are shown relative to it, so the README table reads the same anywhere."""
    from robojam_format.layout import REPO_ROOT

    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def cost_per_million(hourly: float, vcpus: float, rate_per_vcpu: float | None) -> float | None:
    """Dollars per million predictions when the stack's vCPUs serve flat out at the measured rate."""
    if not rate_per_vcpu or vcpus <= 0 or hourly <= 0:
        return None
    return hourly / (rate_per_vcpu * vcpus * 3600) * 1e6


def _comparison_row(stack: dict, rate: float | None) -> dict:
    t = stack["totals"]
    runs = stack["training_runs"]
    return {
        "stack": stack["stack"],
        "target": stack["target"],
        "hourly": t["hourly"],
        "hourly_max": t["hourly_max"],
        "monthly": t["monthly"],
        "monthly_max": t["monthly_max"],
        "unpriced": t["unpriced"],
        "vcpus": t["vcpus"],
        "vcpus_max": t["vcpus_max"],
        # a training stack does not serve, so it has no cost per prediction
        "cost_per_million": None if runs else cost_per_million(t["hourly"], t["vcpus"], rate),
        "cost_per_million_max": None if runs else cost_per_million(t["hourly_max"], t["vcpus_max"], rate),
        "training_run": runs[0] if runs else None,
    }


def build_report(
    estimates: list[StackEstimate],
    catalogue: Catalogue,
    benchmark: dict | None = None,
    max_monthly: float | None = None,
) -> dict:
    """Everything the CLI prints, as plain JSON types (json.loads(json.dumps(report)) == report)."""
    stacks = [e.to_dict() for e in estimates]
    rate = benchmark[BENCHMARK_KEY] if benchmark else None
    comparison = [_comparison_row(s, rate) for s in stacks]
    assumptions = {
        k: {
            "value": stacks[0]["assumptions"][k] if stacks else catalogue.assumption(k),
            "why": v["why"],
            "flag": v.get("flag"),
        }
        for k, v in catalogue.assumptions.items()
    }
    report = {
        "currency": catalogue.currency,
        "hours_per_month": catalogue.hours_per_month,
        "catalogue": {"path": _shown(catalogue.path), "updated": catalogue.updated},
        "assumptions": assumptions,
        "benchmark": benchmark,
        "stacks": stacks,
        "comparison": comparison,
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
    return [
        f"over budget: stack {name!r} costs up to ${rows[name]['monthly_max']:,.2f}/month, more than the "
        f"--max-monthly ${budget['max_monthly']:,.2f}"
        for name in budget["over"]
    ]
