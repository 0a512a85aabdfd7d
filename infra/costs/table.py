"""Infracost-style text tables drawn from the report dict: one per stack, a comparison, the break-even table."""

from __future__ import annotations

import datetime as dt

from infra.costs.breakeven import summary
from infra.costs.estimate import INCLUDED, UNPRICED

PRICE_UNITS = {"hour": "/h", "month": "/mo", "GB-month": "/GB-mo", "GB": "/GB"}
SPOT_MARK = "~"  # before an indicative (spot) price


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
    if line["status"] in (UNPRICED, INCLUDED):
        return line["status"]
    mark = SPOT_MARK if line["indicative"] else ""
    if line["price_unit"] == "fraction":
        return f"{line['unit_price']:.0%} of droplet"
    price = line["unit_price"]
    digits = 2 if line["price_unit"] == "month" or abs(price) >= 1 else 4
    return f"{mark}{_money(price, digits)}{PRICE_UNITS.get(line['price_unit'], '')}"


def _cost(line: dict, key: str, digits: int) -> str:
    if line["status"] == INCLUDED:
        return INCLUDED
    return _span(line[key], line[f"{key}_max"], digits)


def _source(line: dict, today: dt.date) -> str:
    """'cloud.google.com, 7 d': where the price comes from and how old it is."""
    if not line["source_label"]:
        return "-"
    age = (today - dt.date.fromisoformat(line["price_date"])).days
    return f"{line['source_label']}, {age} d"


def _render(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        out.append(" " + "  ".join(cells).rstrip())
    return out


def stack_table(stack: dict, today: dt.date) -> list[str]:
    """Resource rows with their components, then free resources, unpriced count, totals, notes and warnings."""
    target = f" (target: {stack['target']})" if stack["target"] else ""
    out = [f"Stack {stack['stack']}{target}"]
    rows = [["Resource / component", "Quantity", "Unit price", "Hourly", "Monthly", "Price source, age"]]
    notes: list[str] = []
    current = None
    for line in stack["lines"]:
        if (line["type"], line["name"]) != current:
            current = (line["type"], line["name"])
            rows.append([f"{line['name']} ({line['type']})", "", "", "", "", ""])
        rows.append(
            [
                f"  - {line['component']}",
                _qty(line),
                _unit_price(line),
                _cost(line, "hourly", 4),
                _cost(line, "monthly", 2),
                _source(line, today),
            ]
        )
        if line["note"] and line["status"] != INCLUDED:
            notes.append(f"{line['name']} / {line['component']}: {line['note']}")
    t = stack["totals"]
    total = ["TOTAL", "", "", _span(t["hourly"], t["hourly_max"], 4), _span(t["monthly"], t["monthly_max"], 2), ""]
    rows.append(total)
    out += _render(rows, right={3, 4}) if len(rows) > 2 else [" (no billable resources)"]
    if stack["free"]:
        kinds: dict[str, int] = {}
        for res in stack["free"]:
            kinds[res["type"]] = kinds.get(res["type"], 0) + 1
        listed = ", ".join(f"{k} x{n}" if n > 1 else k for k, n in kinds.items())
        out.append(f" {len(stack['free'])} free resource(s): {listed}")
    if t["unpriced"]:
        out.append(f" {t['unpriced']} unpriced item(s): not in the totals")
    out += [f" note: {n}" for n in notes]
    out += [f" warning: {w}" for w in stack["warnings"]]
    for run in stack["training_runs"]:
        out.append(" " + training_run_sentence(run))
    return out


def training_run_sentence(run: dict) -> str:
    """'One training run on X (on-demand): 6 h: on-demand $0.545/h = $3.27, spot ~$0.2095/h = ~$1.26 ...'."""
    head = f"One training run on {run['resource']} (provisioned {run['provisioning']}):"
    if run["hours"] is None:
        rates = ", ".join(f"{_money(run[k]['hourly'], 4)}/h {k.replace('_', '-')}" for k in ("on_demand", "spot"))
        return f"{head} no run limit set; pass --train-hours (rates: {rates}); the monthly column bills 730 h."
    parts = []
    for key in ("on_demand", "spot"):
        price = run[key]
        label, mark = key.replace("_", "-"), SPOT_MARK if price["indicative"] else ""
        if price["cost"] is None:
            parts.append(f"{label} unpriced ({'; '.join(price['unpriced'])})")
        else:
            parts.append(f"{label} {mark}{_money(price['hourly'], 4)}/h = {mark}{_money(price['cost'])}")
    text = f"{head} {run['hours']:g} h (from {run['hours_from']}): " + ", ".join(parts) + "."
    if run["monthly"] is not None:
        between = "boot disk, bucket" if run["disk_between_runs"] else "bucket"
        text += (
            f" Between runs {_money(run['idle_monthly'])}/month keeps billing ({between}); "
            f"{run['runs_per_month']:g} runs a month (--runs-per-month) = {_money(run['monthly'])}/month"
        )
        if run["monthly_spot"] is not None:
            text += f" ({SPOT_MARK}{_money(run['monthly_spot'])} on spot)"
        text += "."
    return text + preemption_sentence(run.get("preemption"))


def preemption_sentence(preemption: dict | None) -> str:
    """' A spot preemption adds ~$0.03: ...' (empty without the catalogue's assumptions)."""
    if not preemption or preemption["cost"] is None:
        return ""
    return (
        f" A spot preemption adds {SPOT_MARK}{_money(preemption['cost'])}: half an epoch redone "
        f"({preemption['lost_epoch_minutes']:g} min, assumed) and {preemption['setup_minutes']:g} min of boot and "
        "setup, at the spot rate; the restarter starts the VM again within 10 minutes (unbilled while stopped)."
    )


def comparison_table(report: dict) -> list[str]:
    """All stacks side by side: cost, serving capacity, cost per million predictions, training runs."""
    record = report["capacity"]
    head = ["Stack", "Target", "Monthly", "Unpriced", "Serving vCPUs", "Capacity req/s", "$ per 1M (min / max)",
            "+ usage per 1M", "Training runs"]  # fmt: skip
    rows = [head]
    for row in report["comparison"]:
        run = row["training_run"]
        run_text = "-"
        if run and run["monthly"] is not None:
            cost, spot = _money(run["on_demand"]["cost"]), _money(run["spot"]["cost"])
            run_text = f"{run['runs_per_month']:g} x {run['hours']:g} h; a run {cost} / {SPOT_MARK}{spot} spot"
        usage = "-" if row["usage_per_million"] is None else f"${row['usage_per_million']:.4f}"
        if row["serving_vcpus"] is None:
            vcpus = capacity = per_million = "-"
        else:
            vcpus = _pair(row["serving_vcpus"], row["serving_vcpus_max"], "{:g}", "-")
            capacity = _pair(row["capacity_rps"], row["capacity_rps_max"], "{:.1f}", "-")
            per_million = _pair(row["cost_per_million"], row["cost_per_million_max"], "${:.4f}", " / ")
            if record is None:
                capacity = per_million = "no capacity record"
        rows.append(
            [
                row["stack"],
                row["target"],
                _span(row["monthly"], row["monthly_max"], 2),
                str(row["unpriced"]),
                vcpus,
                capacity,
                per_million,
                usage,
                run_text,
            ]
        )
    out = ["Comparison"] + _render(rows, right={2, 3, 4, 5, 6, 7})
    if record:
        out.append(
            f" Capacity = {record['requests_per_second_per_vcpu']:g} requests/s per vCPU ({record['path']}: "
            f"{record['objective']}, {record['cpu']}, {record['date'][:10]}) x the vCPUs that serve at each size "
            "(one headroom rule for every target: the measured objective-holding rate, no further margin); "
            "$ per 1M = hourly cost without usage / (capacity x 3600) x 1e6; usage charges per 1M come on top. "
            "Training stacks do not serve."
        )
    else:
        out.append(" Capacity and $ per 1M predictions need a capacity record (`make bench-capacity`, or --capacity).")
    return out


def _pair(lo, hi, fmt: str, sep: str) -> str:
    if lo is None:
        return "-"
    return fmt.format(lo) if lo == hi else f"{fmt.format(lo)}{sep}{fmt.format(hi)}"


def break_even_table(report: dict, key: str = "break_even", title: str = "Break-even") -> list[str]:
    """Each traffic level where some stack's capacity ends: every stack's monthly cost, and the cheapest."""
    result = report.get(key)
    if not result or not result["levels"]:
        return []
    names = list(result["levels"][0]["costs"])
    targets = {row["stack"]: row["target"] for row in report["comparison"]}
    targets.update({n: targets.get(n, "droplet" if n[:2] in ("s-", "c-") else "gke") for n in names})
    rows = [["Up to req/s", *[f"{n} ({targets[n]})" for n in names], "Cheapest"]]
    for level in result["levels"]:
        costs = [_money(level["costs"][n]) if level["costs"][n] is not None else "cannot serve" for n in names]
        rows.append([f"{level['rps']:.1f}", *costs, level["cheapest"] or "-"])
    out = [f"{title} (monthly cost to serve each traffic level)"] + _render(rows, right=set(range(len(names) + 1)))
    out.append(" " + summary(result, targets) + ".")
    return out


def render(report: dict) -> str:
    """The whole text report."""
    today = dt.date.fromisoformat(report["today"])
    cat = report["catalogue"]
    out = [
        f"Prices: {cat['path']} (updated {cat['updated']}), {report['currency']}, monthly = "
        f"{report['hours_per_month']:g} h unless a line says otherwise; {SPOT_MARK} = spot price, indicative "
        '(Google: "Spot prices are dynamic and can change up to once every 30 days")'
    ]
    if cat["warning"]:
        out.append(cat["warning"])
    assumed = ", ".join(
        f"{k} = {v['value']:g}" + (f" ({v['flag']})" if v["flag"] else "") for k, v in report["assumptions"].items()
    )
    out.append(f"Assumptions: {assumed}")
    for stack in report["stacks"]:
        out += [""] + stack_table(stack, today)
    if report["stacks"]:
        out += [""] + comparison_table(report)
    for table in (break_even_table(report), break_even_table(report, "break_even_sizes", "Break-even across sizes")):
        if table:
            out += [""] + table
    return "\n".join(out)
