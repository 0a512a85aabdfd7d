"""Infracost-style text tables drawn from the report dict: one per stack, then a comparison of all stacks."""

from __future__ import annotations

PRICE_UNITS = {"hour": "/h", "month": "/mo", "GB-month": "/GB-mo"}


def _money(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "unpriced"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.{digits}f}"


def _span(lo: float | None, hi: float | None, digits: int) -> str:
    if lo is None or hi is None:
        return "unpriced"
    if round(lo, digits) == round(hi, digits):
        return _money(lo, digits)
    return f"{_money(lo, digits)}-{_money(hi, digits)}"


def _qty(line: dict) -> str:
    lo, hi = line["quantity"], line["quantity_max"]
    num = f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
    return f"{num} {line['unit']}".strip()


def _unit_price(line: dict) -> str:
    if line["status"] == "unpriced":
        return "unpriced"
    if line["status"] == "included":
        return "included"
    if line["price_unit"] == "fraction":
        return f"{line['unit_price']:.0%} of droplet"
    price = line["unit_price"]
    digits = 2 if line["price_unit"] == "month" or abs(price) >= 1 else 4
    return f"{_money(price, digits)}{PRICE_UNITS.get(line['price_unit'], '')}"


def _cost(line: dict, key: str, digits: int) -> str:
    if line["status"] == "included":
        return "included"
    return _span(line[key], line[f"{key}_max"], digits)


def _render(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        out.append(" " + "  ".join(cells).rstrip())
    return out


def _worth_noting(line: dict) -> bool:
    """Notes that change how to read a number: why unpriced, a credit, an assumption, another region."""
    note = line["note"]
    telling = line["status"] in ("unpriced", "credit") or "assum" in note or "catalogue has" in note
    return bool(note) and telling


def stack_table(stack: dict, hours_per_month: float) -> list[str]:
    """Resource rows with their components, then free resources, unpriced count and totals."""
    target = f" (target: {stack['target']})" if stack["target"] else ""
    out = [f"Stack {stack['stack']}{target}"]
    rows = [["Resource / component", "Quantity", "Unit price", "Hourly", f"Monthly ({hours_per_month:g} h)"]]
    notes: list[str] = []
    current = None
    for line in stack["lines"]:
        if (line["type"], line["name"]) != current:
            current = (line["type"], line["name"])
            rows.append([f"{line['name']} ({line['type']})", "", "", "", ""])
        rows.append(
            [
                f"  - {line['component']}",
                _qty(line),
                _unit_price(line),
                _cost(line, "hourly", 4),
                _cost(line, "monthly", 2),
            ]
        )
        if _worth_noting(line):
            notes.append(f"{line['name']} / {line['component']}: {line['note']}")
    t = stack["totals"]
    rows.append(["TOTAL", "", "", _span(t["hourly"], t["hourly_max"], 4), _span(t["monthly"], t["monthly_max"], 2)])
    body = _render(rows, right={3, 4}) if len(rows) > 2 else [" (no billable resources)"]
    out += body
    if stack["free"]:
        kinds: dict[str, int] = {}
        for res in stack["free"]:
            kinds[res["type"]] = kinds.get(res["type"], 0) + 1
        listed = ", ".join(f"{k} x{n}" if n > 1 else k for k, n in kinds.items())
        out.append(f" {len(stack['free'])} free resource(s): {listed}")
    if t["unpriced"]:
        out.append(f" {t['unpriced']} unpriced item(s): not in the totals")
    out += [f" note: {n}" for n in notes]
    for run in stack["training_runs"]:
        out.append(" " + training_run_sentence(run))
    return out


def training_run_sentence(run: dict) -> str:
    """'One training run on X: 4 h (maxRunDuration) at $0.85/h on-demand = $3.41, at $0.42/h spot = $1.68.'"""
    head = f"One training run on {run['resource']} (provisioned {run['provisioning']}):"
    if run["hours"] is None:
        rates = ", ".join(f"{_money(run[k]['hourly'], 4)}/h {k.replace('_', '-')}" for k in ("on_demand", "spot"))
        return f"{head} no run limit set; pass --train-hours (rates: {rates})."
    parts = []
    for key in ("on_demand", "spot"):
        price = run[key]
        label = key.replace("_", "-")
        if price["cost"] is None:
            parts.append(f"{label} unpriced ({'; '.join(price['unpriced'])})")
        else:
            parts.append(f"{label} {_money(price['hourly'], 4)}/h = {_money(price['cost'])}")
    return (
        f"{head} {run['hours']:g} h (from {run['hours_from']}): "
        + ", ".join(parts)
        + ". (The monthly column assumes the VM runs all 730 h.)"
    )


def comparison_table(report: dict) -> list[str]:
    """All stacks side by side: hourly, monthly, vCPUs, cost per million predictions, one training run."""
    bench = report["benchmark"]
    head = [
        "Stack",
        "Target",
        "Hourly",
        "Monthly",
        "Unpriced",
        "vCPUs",
        "$ per 1M predictions (min / max)",
        "Training run (on-demand / spot)",
    ]
    rows = [head]
    for row in report["comparison"]:
        run = row["training_run"]
        run_text = "-"
        if run and run["hours"] is not None:
            run_text = f"{run['hours']:g} h: {_money(run['on_demand']['cost'])} / {_money(run['spot']['cost'])}"
        vcpus = f"{row['vcpus']:g}" if row["vcpus"] == row["vcpus_max"] else f"{row['vcpus']:g}-{row['vcpus_max']:g}"
        if bench is None:
            per_million = "no benchmark"
        elif row["cost_per_million"] is None and row["cost_per_million_max"] is None:
            per_million = "-"
        else:
            lo, hi = row["cost_per_million"], row["cost_per_million_max"]
            per_million = _money(lo, 4) if lo == hi else f"{_money(lo, 4)} / {_money(hi, 4)}"
        rows.append(
            [
                row["stack"],
                row["target"],
                _span(row["hourly"], row["hourly_max"], 4),
                _span(row["monthly"], row["monthly_max"], 2),
                str(row["unpriced"]),
                vcpus,
                per_million,
                run_text,
            ]
        )
    out = ["Comparison"] + _render(rows, right={2, 3, 4, 5, 6})
    if bench:
        out.append(
            f" $ per 1M predictions: hourly cost / ({bench['requests_per_second_per_vcpu']:g} requests/s per "
            f"vCPU x vCPUs x 3600) x 1e6, from {bench['path']}, at full load; training stacks do not serve."
        )
    else:
        out.append(" $ per 1M predictions: needs a benchmark result (benchmarks/latest.json, or --benchmark PATH).")
    return out


def render(report: dict) -> str:
    """The whole text report."""
    hours = report["hours_per_month"]
    out = [
        f"Prices: {report['catalogue']['path']} (updated {report['catalogue']['updated']}), "
        f"{report['currency']}, monthly = {hours:g} h"
    ]
    assumed = ", ".join(
        f"{k} = {v['value']:g}" + (f" ({v['flag']})" if v["flag"] else "") for k, v in report["assumptions"].items()
    )
    out.append(f"Assumptions: {assumed}")
    for stack in report["stacks"]:
        out += [""] + stack_table(stack, hours)
    if len(report["stacks"]) > 0:
        out += [""] + comparison_table(report)
    return "\n".join(out)
