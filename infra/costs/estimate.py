"""Cost lines and per-stack estimates: plain data that the text table, the JSON and the chart all read.

Every amount is a (low, high) pair so autoscaling node pools price at their minimum and maximum size; fixed
resources have low == high. An unpriced line carries None amounts, never 0, and is not added to totals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from infra.costs.catalogue import Catalogue, Item

PRICED, UNPRICED, INCLUDED, CREDIT = "priced", "unpriced", "included", "credit"


@dataclass(frozen=True)
class Line:
    """One billable component of one resource (a machine, its GPU, its disk, a cluster fee...)."""

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
    vcpus: float = 0.0
    vcpus_max: float = 0.0
    item: str | None = None
    note: str = ""

    @property
    def counted(self) -> bool:
        return self.status in (PRICED, INCLUDED, CREDIT)


def amounts(item: Item, quantity: float, hours_per_month: float) -> tuple[float, float]:
    """(hourly, monthly) for `quantity` units of an item, honouring free quantities and monthly caps."""
    if item.unit == "hour":
        hourly = item.price * quantity
        return hourly, hourly * hours_per_month
    if item.unit == "month":
        monthly = item.price * quantity
        hourly_rate = item.price_hourly if item.price_hourly is not None else item.price / hours_per_month
        return hourly_rate * quantity, monthly
    if item.unit == "GB-month":
        billable = max(0.0, quantity - float(item.extra.get("free_quantity", 0.0)))
        monthly = item.price * billable
        return monthly / hours_per_month, monthly
    raise ValueError(f"unit {item.unit!r} of {item.id} has no per-quantity amount")


def priced_line(
    catalogue: Catalogue,
    res,
    item: Item,
    component: str,
    quantity: float,
    unit: str,
    category: str,
    quantity_max: float | None = None,
    vcpus_each: float = 0.0,
    note: str = "",
) -> Line:
    """A line priced from a catalogue item at the low and high quantity."""
    qmax = quantity if quantity_max is None else quantity_max
    h_lo, m_lo = amounts(item, quantity, catalogue.hours_per_month)
    h_hi, m_hi = amounts(item, qmax, catalogue.hours_per_month)
    notes = [n for n in (note, item.extra.get("note", "")) if n]
    return Line(
        type=res.type,
        name=res.name,
        component=component,
        quantity=quantity,
        quantity_max=qmax,
        unit=unit,
        category=category,
        unit_price=item.price,
        price_unit=item.unit,
        hourly=h_lo,
        hourly_max=h_hi,
        monthly=m_lo,
        monthly_max=m_hi,
        vcpus=vcpus_each * quantity,
        vcpus_max=vcpus_each * qmax,
        item=item.id,
        note="; ".join(notes),
    )


def unpriced_line(
    res,
    component: str,
    why: str,
    quantity: float = 1,
    unit: str = "",
    category: str = "other",
    vcpus_each: float = 0.0,
    quantity_max: float | None = None,
) -> Line:
    """A line the catalogue cannot price: shown as 'unpriced' with the reason, never counted as $0."""
    qmax = quantity if quantity_max is None else quantity_max
    return Line(
        type=res.type,
        name=res.name,
        component=component,
        quantity=quantity,
        quantity_max=qmax,
        unit=unit,
        category=category,
        status=UNPRICED,
        vcpus=vcpus_each * quantity,
        vcpus_max=vcpus_each * qmax,
        note=why,
    )


@dataclass(frozen=True)
class StackEstimate:
    """Everything one stack costs, plus what it would cost to run one training job on its GPU VM."""

    stack: str
    target: str
    lines: list[Line]
    free: list[dict] = field(default_factory=list)
    training_runs: list[dict] = field(default_factory=list)
    assumptions: dict = field(default_factory=dict)

    def _total(self, attr: str) -> float:
        return sum(getattr(line, attr) for line in self.lines if line.counted)

    @property
    def unpriced(self) -> list[Line]:
        return [line for line in self.lines if line.status == UNPRICED]

    def to_dict(self) -> dict:
        totals = {k: self._total(k) for k in ("hourly", "hourly_max", "monthly", "monthly_max", "vcpus", "vcpus_max")}
        return {
            "stack": self.stack,
            "target": self.target,
            "lines": [asdict(line) for line in self.lines],
            "free": list(self.free),
            "totals": {**totals, "unpriced": len(self.unpriced)},
            "training_runs": list(self.training_runs),
            "assumptions": dict(self.assumptions),
        }
