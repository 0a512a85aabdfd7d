"""What a serving stack serves with: its capacity steps, as typed values a pricer returns.

A droplet has one step; a GKE node pool one per replica count its HPA runs (on the fewest nodes that hold them,
`infra.costs.capacity`). A step knows its size (units: droplets or nodes), the vCPUs of load it carries before the
next step and, once the stack is priced, its hourly and monthly cost. The requests/s a step serves is
`ServingCapacity.requests_per_second`: the one place the capacity rule lives (the capacity record's rate per vCPU
x the step's vCPUs x the headroom every target shares).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class CapacityStep:
    """One size a serving stack runs at, and (after pricing) what it costs at that size."""

    units: int  # droplets or nodes
    serving_vcpus: float  # sustained vCPUs that serve at this size
    replicas: int | None = None  # pods that run (the HPA's maximum, capped by what fits); None without pods
    room: int | None = None  # pods the scheduler could place at this size (uncapped); None without pods
    hourly: float | None = None  # the stack's cost at this size; None until the stack is priced
    monthly: float | None = None

    def to_dict(self) -> dict:
        """Plain JSON types; the pod counts only for a stack that runs pods."""
        pods = {} if self.replicas is None else {"replicas": self.replicas, "room": self.room}
        return {
            "units": self.units,
            **pods,
            "serving_vcpus": self.serving_vcpus,
            "hourly": self.hourly,
            "monthly": self.monthly,
        }


@dataclass(frozen=True)
class ServingCapacity:
    """A serving stack's capacity steps (smallest first) and the utilisation it runs its CPUs at."""

    unit: str  # "droplet" or "node"
    sustained_vcpus_each: float
    utilisation: float  # the headroom: share of a step's vCPUs planned to serve (capacity.HEADROOM, every target)
    utilisation_from: str  # the headroom rule, stated
    steps: tuple[CapacityStep, ...]

    @property
    def min_units(self) -> int:
        return self.steps[0].units if self.steps else 0

    @property
    def max_units(self) -> int:
        return self.steps[-1].units if self.steps else 0

    def requests_per_second(self, step: CapacityStep, rate_per_vcpu: float) -> float:
        """Requests/s a step serves: measured rate per vCPU x the step's vCPUs x the headroom."""
        return rate_per_vcpu * step.serving_vcpus * self.utilisation

    def priced(self, hourly: tuple[float, float], monthly: tuple[float, float]) -> ServingCapacity:
        """Each step's cost from the stack's (minimum, maximum) totals: node-linear between the two sizes."""
        lo, hi = self.min_units, self.max_units
        steps = []
        for step in self.steps:
            share = 0.0 if hi == lo else (step.units - lo) / (hi - lo)
            steps.append(
                replace(
                    step,
                    hourly=hourly[0] + share * (hourly[1] - hourly[0]),
                    monthly=monthly[0] + share * (monthly[1] - monthly[0]),
                )
            )
        return replace(self, steps=tuple(steps))

    def to_dict(self) -> dict:
        return {
            "unit": self.unit,
            "sustained_vcpus_each": self.sustained_vcpus_each,
            "utilisation": self.utilisation,
            "utilisation_from": self.utilisation_from,
            "min_units": self.min_units,
            "max_units": self.max_units,
            "steps": [step.to_dict() for step in self.steps],
        }
