"""Break-even between serving targets: at each traffic level, which stack serves it for the least money.

Each serving stack has capacity steps (`infra.costs.serving`: a droplet, one; a GKE pool, one per replica count
its HPA runs), each with the requests/s it serves and its monthly cost without usage charges. A stack
serves a level with its first step whose capacity reaches it; past its last step it cannot serve it as configured.
"""

from __future__ import annotations

from infra.costs.estimate import StackEstimate


def options(estimates: list[StackEstimate], rate_per_vcpu: float) -> dict[str, list[tuple[float, float]]]:
    """{stack: [(requests/s, monthly $), ...]} for every stack that serves, cheapest step first."""
    found = {}
    for estimate in estimates:
        serving = estimate.serving
        if serving and serving.steps:
            steps = [(serving.requests_per_second(s, rate_per_vcpu), s.monthly) for s in serving.steps]
            found[estimate.stack] = sorted(steps)
    return found


def cost_at(steps: list[tuple[float, float]], rps: float) -> float | None:
    """Monthly cost of the first step that serves `rps`, or None when none does."""
    return next((monthly for cap, monthly in steps if cap >= rps - 1e-9), None)


def break_even(estimates: list[StackEstimate], rate_per_vcpu: float) -> dict:
    """Levels (each step's capacity) with every stack's cost, the cheapest, and the ranges where each wins."""
    by_stack = options(estimates, rate_per_vcpu)
    edges = sorted({round(cap, 6) for steps in by_stack.values() for cap, _ in steps})
    levels, ranges = [], []
    low = 0.0
    for rps in edges:
        costs = {name: cost_at(steps, rps) for name, steps in by_stack.items()}
        priced = {name: cost for name, cost in costs.items() if cost is not None}
        cheapest = min(priced, key=lambda name: (priced[name], name)) if priced else None
        levels.append({"rps": rps, "costs": costs, "cheapest": cheapest})
        if ranges and ranges[-1]["stack"] == cheapest:
            ranges[-1].update(to_rps=rps, monthly_max=priced[cheapest])
        else:
            ranges.append(
                {
                    "stack": cheapest,
                    "from_rps": low,
                    "to_rps": rps,
                    "monthly": priced[cheapest],
                    "monthly_max": priced[cheapest],
                }
            )
        low = rps
    return {
        "rate_per_vcpu": rate_per_vcpu,
        "levels": levels,
        "ranges": ranges,
        "max_rps": edges[-1] if edges else 0.0,
    }


def summary(result: dict, targets: dict[str, str]) -> str:
    """'dev (droplet) is the cheapest up to 21.35 req/s at $6.00/month; then gke ...; above N req/s none serves'."""
    parts = []
    for i, r in enumerate(result["ranges"]):
        cost = f"${r['monthly']:,.2f}" + (f"-${r['monthly_max']:,.2f}" if r["monthly_max"] != r["monthly"] else "")
        head = "is the cheapest up to" if i == 0 else "then"
        name = f"{r['stack']} ({targets.get(r['stack'], '')})"
        parts.append(f"{name} {head} {r['to_rps']:.1f} req/s at {cost}/month" if i == 0 else
                     f"{head} {name} up to {r['to_rps']:.1f} req/s at {cost}/month")  # fmt: skip
    if not parts:
        return "no stack serves (no capacity record or no serving stack)"
    return "; ".join(parts) + f"; above {result['max_rps']:.1f} req/s no stack serves as configured (raise its maximum)"
