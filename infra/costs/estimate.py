"""Cost lines and per-stack estimates: plain data that the text table, the JSON and the chart all read.

Every amount is a (low, high) pair so autoscaling node pools price at their minimum and maximum size; fixed
resources have low == high. An unpriced line carries None amounts, never 0, and is not added to totals.
Every line is made by `line()`, the one builder, so each carries its price's source, date and spot flag.
A pricer returns what it found for one resource as a `Priced`: lines, the serving capacity it provides (a
droplet, a node pool) and warnings; `pricing.price_plan` gathers them into one `StackEstimate`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from infra.costs.catalogue import Catalogue, Item
from infra.costs.serving import ServingCapacity

if TYPE_CHECKING:
    from infra.costs.training import TrainingRun

PRICED, UNPRICED, INCLUDED, CREDIT = "priced", "unpriced", "included", "credit"
USAGE = "usage"  # the category of a charge that grows with traffic (infra.costs.usage), not with the stack's size
COUNTED = (PRICED, INCLUDED, CREDIT)


@dataclass(frozen=True)
class PriceLine:
    """One billable component of one resource (a machine, its GPU, its disk, a cluster fee, a usage charge...)."""

    type: str
    name: str
    component: str
    quantity: float
    quantity_max: float
    unit: str
    category: str
    status: str = PRICED
    unit_price: float | None = None
    price_unit: str | None = None
    hourly: float | None = None
    hourly_max: float | None = None
    monthly: float | None = None
    monthly_max: float | None = None
    item: str | None = None
    source: str | None = None  # the price's source URL
    source_label: str | None = None  # its short name for the table
    price_date: str | None = None  # when the price was current (ISO date)
    indicative: bool = False  # a spot price: "dynamic and can change up to once every 30 days" (Google)
    note: str = ""  # the pricer's own explanation, always shown

    @property
    def counted(self) -> bool:
        return self.status in COUNTED


def amounts(item: Item, quantity: float, hours_per_month: float, hours: float | None = None) -> tuple[float, float]:
    """(hourly, monthly) for `quantity` units of an item; `hours` bills a per-time item only that many hours a month."""
    if item.unit == "hour":
        hourly = item.price * quantity
        return hourly, hourly * (hours_per_month if hours is None else hours)
    if item.unit == "month":  # a month that runs throughout: the list price, and per hour price / hours a month
        monthly = item.price * quantity
        return monthly / hours_per_month, monthly
    if item.unit == "GB-month":
        hourly = item.price * quantity / hours_per_month
        return hourly, hourly * (hours_per_month if hours is None else hours)
    raise ValueError(f"unit {item.unit!r} of {item.id} has no per-quantity amount")


def line(
    res,
    *,
    catalogue: Catalogue,
    component: str,
    unit: str,
    category: str,
    item: Item | None = None,
    missing: str = "",
    quantity: float = 1,
    quantity_max: float | None = None,
    hours: float | None = None,
    status: str = PRICED,
    amount: tuple[float, float] | None = None,
    note: str = "",
) -> PriceLine:
    """The one way to make a PriceLine.

    With `item`, the amounts come from the catalogue (for `hours` a month when given); `amount` = (hourly,
    monthly) overrides them for derived charges (a backup fraction, a credit). Without an item the line is
    unpriced, `missing` saying why. `status=INCLUDED` is a component another price already covers.
    """
    qmax = quantity if quantity_max is None else quantity_max
    base = dict(
        type=res.type,
        name=res.name,
        component=component,
        quantity=quantity,
        quantity_max=qmax,
        unit=unit,
        category=category,
        note=note,
    )
    if status == INCLUDED:
        return PriceLine(**base, status=INCLUDED, hourly=0.0, hourly_max=0.0, monthly=0.0, monthly_max=0.0)
    if item is None:
        return PriceLine(**{**base, "note": "; ".join(n for n in (missing, note) if n)}, status=UNPRICED)
    if amount is not None:
        (h_lo, m_lo), (h_hi, m_hi) = amount, amount
    else:
        h_lo, m_lo = amounts(item, quantity, catalogue.hours_per_month, hours)
        h_hi, m_hi = amounts(item, qmax, catalogue.hours_per_month, hours)
    return PriceLine(
        **base,
        status=status,
        unit_price=-item.price if status == CREDIT else item.price,
        price_unit=item.unit,
        hourly=h_lo,
        hourly_max=h_hi,
        monthly=m_lo,
        monthly_max=m_hi,
        item=item.id,
        source=item.source,
        source_label=item.source_label,
        price_date=item.price_date.isoformat(),
        indicative=item.indicative,
    )


@dataclass(frozen=True)
class Priced:
    """What a pricer found for one resource: its lines, the serving capacity it provides, and warnings."""

    lines: tuple[PriceLine, ...] = ()
    serving: ServingCapacity | None = None  # set by the resource a stack serves with (droplet, node pool)
    warnings: tuple[str, ...] = ()  # a figure that cannot work as configured


@dataclass(frozen=True)
class FreeResource:
    """A resource that costs nothing, and why."""

    type: str  # Pulumi type token
    name: str  # logical name
    why: str  # the catalogue's reason (free_types), or "creates nothing billable"


@dataclass(frozen=True)
class Totals:
    """A stack's counted lines summed at its minimum and maximum size; unpriced lines are only counted."""

    hourly: float
    hourly_max: float
    monthly: float
    monthly_max: float
    unpriced: int

    @classmethod
    def of(cls, lines: tuple[PriceLine, ...]) -> Totals:
        counted = [line for line in lines if line.counted]
        amounts = ("hourly", "hourly_max", "monthly", "monthly_max")
        sums = {k: sum(getattr(line, k) for line in counted) for k in amounts}
        return cls(**sums, unpriced=sum(1 for line in lines if line.status == UNPRICED))


@dataclass(frozen=True)
class StackEstimate:
    """Everything one stack costs, what a training run costs, and what its serving capacity is."""

    stack: str
    target: str
    lines: tuple[PriceLine, ...]
    free: tuple[FreeResource, ...] = ()
    training_runs: tuple[TrainingRun, ...] = ()
    serving: ServingCapacity | None = None  # capacity steps (infra.costs.serving) for serving targets
    warnings: tuple[str, ...] = ()  # a figure that cannot work as configured
    assumptions: dict = field(default_factory=dict)

    @property
    def totals(self) -> Totals:
        return Totals.of(self.lines)

    @property
    def fixed_totals(self) -> Totals:
        """What the stack costs whatever its traffic: the totals without the usage charges."""
        return Totals.of(tuple(line for line in self.lines if line.category != USAGE))

    @property
    def unpriced(self) -> list[PriceLine]:
        return [line for line in self.lines if line.status == UNPRICED]

    def to_dict(self) -> dict:
        """Plain JSON types (the report's `stacks` entries)."""
        return {
            "stack": self.stack,
            "target": self.target,
            "lines": [asdict(line) for line in self.lines],
            "free": [asdict(free) for free in self.free],
            "totals": asdict(self.totals),
            "training_runs": [run.to_dict() for run in self.training_runs],
            "serving": self.serving.to_dict() if self.serving else None,
            "warnings": list(self.warnings),
            "assumptions": dict(self.assumptions),
        }
