"""The break-even chart: monthly cost of each serving stack against the traffic it serves (requests/s)."""

from __future__ import annotations

from pathlib import Path

from infra.costs.breakeven import options
from infra.costs.estimate import StackEstimate


def plot_break_even(report: dict, estimates: list[StackEstimate], path: str | Path, key: str = "break_even") -> Path:
    """Write a PNG: one step line per serving stack (of `estimates`, the report's `key` result), ending where its
    capacity ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    result = report[key]
    fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    targets = {e.stack: e.target for e in estimates}
    if result:
        for name, steps in options(estimates, result["rate_per_vcpu"]).items():
            xs, ys, low = [], [], 0.0
            for cap, monthly in steps:
                xs += [low, cap]
                ys += [monthly, monthly]
                low = cap
            drawn = ax.plot(xs, ys, linewidth=2, label=f"{name} ({targets[name]})")
            ax.plot([xs[-1]], [ys[-1]], "o", color=drawn[0].get_color())
            ax.annotate(
                rf"\${ys[-1]:,.0f}: {xs[-1]:.0f} req/s",  # a literal dollar, not matplotlib mathtext
                (xs[-1], ys[-1]),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=8,
            )
        for r in result["ranges"][1:]:
            ax.axvline(r["from_rps"], color="grey", linestyle=":", linewidth=1)
        ax.legend(fontsize=7, loc="upper left")
        ax.set_xlim(0, result["max_rps"] * 1.25)
    else:
        ax.text(0.5, 0.5, "no capacity record: no capacity to compare", ha="center", transform=ax.transAxes)
    ax.set_xlabel(f"requests/s served ({result['rate_per_vcpu']:g} req/s per vCPU measured)" if result else "req/s")
    ax.set_ylabel(f"{report['currency']} per month")
    ax.set_title("RoboJam: cheapest serving target by traffic (break-even)")
    ax.set_ylim(bottom=0)
    ax.margins(y=0.15)
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)
    return path
