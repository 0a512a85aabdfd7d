"""Training runs on a GPU VM: what one run costs (on-demand and spot) and what a month of runs holds.

A run costs what bills only while the VM runs (machine, GPUs, ephemeral IP; the boot disk too when the run limit
deletes the VM); everything else in the stack keeps billing between runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from infra.costs import gcp
from infra.costs.context import PricingContext

PROVISIONINGS = ("on-demand", "spot")


@dataclass(frozen=True)
class RunPrice:
    """One run at one provisioning model: its hourly rate and cost, or what keeps it unpriced."""

    hourly: float | None
    cost: float | None  # hourly x the run's hours; None without a run length or a price
    unpriced: tuple[str, ...]  # 'component: why' for each part without a price
    indicative: bool  # a spot price: "dynamic and can change up to once every 30 days" (Google)


@dataclass(frozen=True)
class Preemption:
    """What one spot preemption adds to a run: the half epoch on average lost since the last backup, redone, and
    the restarted VM's boot and setup, both at the spot rate. The wait for the restarter is not billed (the VM is
    stopped); the bucket already holds the run's backup."""

    lost_epoch_minutes: float
    setup_minutes: float
    cost: float | None  # None without a spot price


@dataclass(frozen=True)
class TrainingRun:
    """One training run on a VM, at both provisioning models, and the month that `runs_per_month` runs make."""

    resource: str
    hours: float | None
    hours_from: str | None  # "--train-hours" or "maxRunDuration"; None without a run length
    provisioning: str  # the VM's own model: "on-demand" or "spot"
    runs_per_month: float
    disk_between_runs: bool  # the boot disk keeps billing between runs (the run limit stops, not deletes)
    on_demand: RunPrice
    spot: RunPrice
    idle_monthly: float | None = None  # what bills between runs; None until `with_month`, or when unpriced
    monthly: float | None = None
    monthly_spot: float | None = None
    preemption: Preemption | None = None  # None without the catalogue's epoch and setup assumptions

    @property
    def own(self) -> RunPrice:
        """The run at the VM's own provisioning model."""
        return self.spot if self.provisioning == "spot" else self.on_demand

    def with_month(self, monthly: float) -> TrainingRun:
        """The stack's monthly figure split into what bills between runs plus runs x run cost."""
        own, spot = self.own.cost, self.spot.cost
        if own is None or self.hours is None:
            return replace(self, idle_monthly=None, monthly=None, monthly_spot=None)
        idle = monthly - self.runs_per_month * own
        monthly_spot = None if spot is None else idle + self.runs_per_month * spot
        return replace(self, idle_monthly=idle, monthly=monthly, monthly_spot=monthly_spot)

    def to_dict(self) -> dict:
        """Plain JSON types (`unpriced` as a list)."""
        data = asdict(self)
        for key in ("on_demand", "spot"):
            data[key]["unpriced"] = list(data[key]["unpriced"])
        return data


def training_run(res, ctx: PricingContext) -> TrainingRun:
    """One training run on the GPU VM `res`, priced on-demand and spot; the month comes from `with_month`."""
    limit = gcp.max_run_hours(res.inputs)
    hours = ctx.train_hours or limit
    deleted = (res.inputs.get("scheduling") or {}).get("instanceTerminationAction") == "DELETE"
    prices = {}
    for pricing in PROVISIONINGS:
        lines = [x for x in gcp.instance_lines(res, ctx, pricing) if deleted or x.category != "storage"]
        missing = tuple(f"{x.component}: {x.note}" for x in lines if not x.counted)
        hourly = None if missing else sum(x.hourly for x in lines)
        cost = None if hourly is None or hours is None else hourly * hours
        prices[pricing] = RunPrice(hourly=hourly, cost=cost, unpriced=missing, indicative=pricing == "spot")
    return TrainingRun(
        preemption=preemption_cost(prices["spot"].hourly, ctx.assumptions),
        resource=res.name,
        hours=hours,
        hours_from=("--train-hours" if ctx.train_hours else "maxRunDuration") if hours else None,
        provisioning="spot" if gcp.is_spot(res.inputs.get("scheduling")) else "on-demand",
        runs_per_month=ctx.assumptions["runs_per_month"],
        disk_between_runs=not deleted,
        on_demand=prices["on-demand"],
        spot=prices["spot"],
    )


def preemption_cost(spot_hourly: float | None, assumptions) -> Preemption | None:
    """One preemption's extra cost from the catalogue's assumptions (epoch_minutes, restart_setup_minutes)."""
    epoch, setup = assumptions.get("epoch_minutes"), assumptions.get("restart_setup_minutes")
    if epoch is None or setup is None:
        return None
    lost = epoch / 2
    cost = None if spot_hourly is None else spot_hourly * (lost + setup) / 60
    return Preemption(lost_epoch_minutes=lost, setup_minutes=setup, cost=cost)
