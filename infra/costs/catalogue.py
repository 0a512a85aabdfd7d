"""The bundled price catalogue: load it, check every entry is sourced and dated, look prices up.

Prices live in ``catalogue.json`` (data, not code) so a refresh rewrites a file and a reviewer can diff it.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

CATALOGUE_PATH = Path(__file__).with_name("catalogue.json")
UNITS = ("hour", "month", "GB-month", "fraction", "GB")  # GB: per GiB transferred or ingested
PRICINGS = ("on-demand", "spot")
REQUIRED = ("id", "provider", "kind", "name", "pricing", "price", "unit", "region", "source", "date")


class CatalogueError(ValueError):
    """The catalogue file is missing, unreadable or has an entry without price, unit, source or date."""


@dataclass(frozen=True)
class Item:
    """One priced thing: a machine type, a GPU, a GB-month of a disk type, a monthly tier."""

    id: str
    provider: str
    kind: str
    name: str
    pricing: str
    price: float
    unit: str
    region: str
    source: str
    date: str
    extra: dict = field(default_factory=dict)

    @property
    def price_hourly(self) -> float | None:
        """DigitalOcean's per-second rate for a part month (capped at the list price at 672 h); unused for a month."""
        return self.extra.get("price_hourly")

    @property
    def indicative(self) -> bool:
        """Google: "Spot prices are dynamic and can change up to once every 30 days": only an indication."""
        return self.pricing == "spot"

    @property
    def price_date(self) -> dt.date:
        """When the price itself was current: the source's own date when it has one, else the day it was read."""
        return parse_date(self.extra.get("source_date") or self.date)

    @property
    def source_label(self) -> str:
        """A short name for the source: the host, plus the owner for GitHub (github.com/skypilot-org)."""
        url = urllib.parse.urlsplit(self.source)
        host = url.netloc.removeprefix("www.")
        owner = url.path.strip("/").split("/")[0] if host == "github.com" else ""
        return f"{host}/{owner}" if owner else host


@dataclass(frozen=True)
class Catalogue:
    """Items plus the documented assumptions and the types that are free by design."""

    path: Path
    hours_per_month: float
    updated: str
    items: tuple[Item, ...]
    assumptions: dict
    free_types: dict
    free_type_prefixes: dict
    capacity: dict = field(default_factory=dict)
    currency: str = "USD"

    def find(self, kind: str, name: str, pricing: str = "on-demand", region: str | None = None) -> Item | None:
        """The item for (kind, name, pricing); the region's own price first, else the one priced region."""
        matches = [i for i in self.items if i.kind == kind and i.name == name and i.pricing == pricing]
        for item in matches:
            if region is None or item.region in (region, "all"):
                return item
        return matches[0] if matches else None

    def by_id(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def free_reason(self, type_token: str) -> str | None:
        """Why a resource type costs nothing, or None when the catalogue does not say it is free."""
        if type_token in self.free_types:
            return self.free_types[type_token]
        for prefix, why in self.free_type_prefixes.items():
            if type_token.startswith(prefix):
                return why
        return None

    def assumption(self, key: str) -> float:
        return float(self.assumptions[key]["value"])

    def oldest_price(self) -> Item:
        """The item whose price is oldest: what the staleness warning is about."""
        return min(self.items, key=lambda item: item.price_date)


def parse_date(text: str) -> dt.date:
    """'2026-07-30' or '2026-07' (a month: its first day)."""
    return dt.date.fromisoformat(text if len(text) == 10 else f"{text}-01")


def _check_item(raw: dict, index: int) -> Item:
    missing = [k for k in REQUIRED if raw.get(k) in (None, "")]
    where = raw.get("id", f"item #{index}")
    if missing:
        raise CatalogueError(f"catalogue entry {where} lacks {', '.join(missing)}")
    if not isinstance(raw["price"], int | float) or isinstance(raw["price"], bool) or raw["price"] < 0:
        raise CatalogueError(f"catalogue entry {where} has a price that is not a non-negative number")
    if raw["unit"] not in UNITS:
        raise CatalogueError(f"catalogue entry {where} has unit {raw['unit']!r}, expected one of {UNITS}")
    if raw["pricing"] not in PRICINGS:
        raise CatalogueError(f"catalogue entry {where} has pricing {raw['pricing']!r}, expected one of {PRICINGS}")
    if not str(raw["source"]).startswith("https://"):
        raise CatalogueError(f"catalogue entry {where} has a source that is not an https URL")
    for key in ("date", "source_date"):
        try:
            if key in raw:
                parse_date(raw[key])
        except (TypeError, ValueError):
            raise CatalogueError(f"catalogue entry {where} has {key} {raw[key]!r}, expected YYYY-MM-DD") from None
    extra = {k: v for k, v in raw.items() if k not in REQUIRED}
    return Item(**{k: raw[k] for k in REQUIRED}, extra=extra)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and validate a catalogue file; any defect is one CatalogueError sentence."""
    path = Path(path) if path else CATALOGUE_PATH
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CatalogueError(f"catalogue file {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogueError(f"catalogue file {path} is not readable JSON ({exc})") from None
    try:
        items = tuple(_check_item(raw, i) for i, raw in enumerate(data["items"]))
        ids = [i.id for i in items]
        if len(ids) != len(set(ids)):
            raise CatalogueError(f"catalogue file {path} repeats an item id")
        for key, entry in data["assumptions"].items():
            if not isinstance(entry.get("value"), int | float) or not entry.get("why"):
                raise CatalogueError(f"catalogue assumption {key} needs a numeric value and a why")
        return Catalogue(
            path=path,
            hours_per_month=float(data["hours_per_month"]),
            updated=data["updated"],
            items=items,
            assumptions=data["assumptions"],
            free_types=data["free_types"],
            free_type_prefixes=data["free_type_prefixes"],
            capacity=data.get("capacity", {}),
            currency=data.get("currency", "USD"),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise CatalogueError(f"catalogue file {path} lacks or misshapes field {exc}") from None
