"""The comparison chart: monthly cost per stack, stacked by category (compute, GPU, storage, network...)."""

from __future__ import annotations

from pathlib import Path

CATEGORIES = ("compute", "gpu", "storage", "network", "management", "other")


def category_totals(stack: dict) -> dict[str, float]:
    """Worst-case (max) monthly dollars per category; the GKE credit is netted into the management fee."""
    totals = dict.fromkeys(CATEGORIES, 0.0)
    for line in stack["lines"]:
        if line["monthly_max"] is None:
            continue
        category = "management" if line["category"] == "credit" else line["category"]
        totals[category if category in totals else "other"] += line["monthly_max"]
    return {k: max(0.0, round(v, 6)) for k, v in totals.items()}


def plot_comparison(report: dict, path: str | Path) -> Path:
    """Write a PNG bar chart of every stack's monthly cost; the range label shows autoscaling min-max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    stacks = report["stacks"]
    names = [f"{s['stack']}\n({s['target']})" if s["target"] else s["stack"] for s in stacks]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.8 * len(stacks) + 2), 4.5), layout="constrained")
    bottoms = [0.0] * len(stacks)
    per_stack = [category_totals(s) for s in stacks]
    for category in CATEGORIES:
        heights = [totals[category] for totals in per_stack]
        if any(heights):
            ax.bar(names, heights, bottom=bottoms, label=category)
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    for i, stack in enumerate(stacks):
        t = stack["totals"]
        label = (
            f"${t['monthly']:,.2f}"
            if t["monthly"] == t["monthly_max"]
            else f"${t['monthly']:,.2f}-${t['monthly_max']:,.2f}"
        )
        if t["unpriced"]:
            label += f"\n+{t['unpriced']} unpriced"
        label = label.replace("$", r"\$")  # a literal dollar, not matplotlib mathtext
        ax.annotate(
            label,
            (i, bottoms[i]),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_ylabel(f"{report['currency']} per month ({report['hours_per_month']:g} h, max size)")
    ax.set_title("RoboJam: monthly cost per stack")
    ax.margins(y=0.15)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)
    return path
