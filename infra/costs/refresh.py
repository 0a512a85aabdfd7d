"""`--refresh`: re-read prices from the providers' public price APIs into the catalogue file.

GCP: Cloud Billing Catalog API SKUs of Compute Engine (an API key in GOOGLE_API_KEY); a machine type's price
is vCPUs x core SKU + GB x RAM SKU (+ the GPUs a G2 includes). DigitalOcean: `/v2/sizes` (DIGITALOCEAN_TOKEN).
Without credentials or network it says so in one line and leaves the bundled file untouched: the offline
catalogue stays the source of truth, and a refresh writes the file only once every request has succeeded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

GCP_KEY_ENV = "GOOGLE_API_KEY"
DO_TOKEN_ENV = "DIGITALOCEAN_TOKEN"
GCE_SERVICE = "6F81-5844-456A"  # Compute Engine in the Cloud Billing Catalog
GCP_SKUS_URL = f"https://cloudbilling.googleapis.com/v1/services/{GCE_SERVICE}/skus"
DO_SIZES_URL = "https://api.digitalocean.com/v2/sizes"
TIMEOUT_S = 15
# SKUs of 1- and 3-year commitments match the same descriptions ("Commitment v1: Nvidia Tesla T4 GPU ...") at
# a committed price nobody pays on demand: never read them.
COMMITTED_USAGE = ("Commit1Yr", "Commit3Yr")
GPU_SKU_NAMES = {
    "nvidia-tesla-t4": "Tesla T4",
    "nvidia-l4": "L4",
    "nvidia-tesla-v100": "Tesla V100",
    "nvidia-tesla-p100": "Tesla P100",
}
DISK_SKUS = {"pd-balanced": "Balanced PD Capacity"}


class RefreshUnavailable(RuntimeError):
    """No credentials or no network: the one line the CLI prints before keeping the bundled catalogue."""


def _get_json(url: str, headers: dict[str, str] | None = None) -> dict:
    request = urllib.request.Request(url, headers={"Accept": "application/json", **(headers or {})})
    host = urllib.parse.urlsplit(url).netloc
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read().decode())
    except urllib.error.HTTPError as exc:
        raise RefreshUnavailable(f"{host} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RefreshUnavailable(f"cannot reach {host} ({reason})") from None
    except json.JSONDecodeError:
        raise RefreshUnavailable(f"{host} did not answer JSON") from None


def fetch_gcp_skus(api_key: str) -> list[dict]:
    skus, token = [], ""
    while True:
        query = {
            "key": api_key,
            "currencyCode": "USD",
            "pageSize": 5000,
            **({"pageToken": token} if token else {}),
        }
        page = _get_json(f"{GCP_SKUS_URL}?{urllib.parse.urlencode(query)}")
        skus += page.get("skus", [])
        token = page.get("nextPageToken", "")
        if not token:
            return skus


def fetch_do_sizes(token: str) -> list[dict]:
    sizes, url = [], f"{DO_SIZES_URL}?per_page=200"
    while url:
        page = _get_json(url, {"Authorization": f"Bearer {token}"})
        sizes += page.get("sizes", [])
        url = ((page.get("links") or {}).get("pages") or {}).get("next")
    return sizes


def _unit_price(sku: dict) -> float:
    rate = sku["pricingInfo"][0]["pricingExpression"]["tieredRates"][-1]["unitPrice"]
    return int(rate.get("units") or 0) + int(rate.get("nanos") or 0) / 1e9


def _sku_price(skus: list[dict], pattern: str, spot: bool, region: str) -> float | None:
    """Price of the on-demand or spot SKU in `region` whose description matches `pattern`.

    Spot SKUs say 'Preemptible'; committed-use SKUs are skipped, whatever their description says.
    """
    regex = re.compile(pattern, re.IGNORECASE)
    for sku in skus:
        desc = sku.get("description", "")
        usage = (sku.get("category") or {}).get("usageType", "")
        if usage in COMMITTED_USAGE or desc.lower().startswith("commitment"):
            continue
        is_spot = "preemptible" in desc.lower() or usage == "Preemptible"
        if is_spot == spot and region in sku.get("serviceRegions", []) and regex.search(desc):
            return _unit_price(sku)
    return None


def gcp_prices(skus: list[dict], items: list[dict]) -> dict[str, float]:
    """New prices by catalogue id for GCE machine types, GPUs and disks found among the SKUs."""
    found: dict[str, float] = {}
    for item in (i for i in items if i["provider"] == "gcp"):
        spot, region = item["pricing"] == "spot", item["region"]
        price = None
        if item["kind"] == "machine":
            family = item["name"].split("-")[0].upper()
            core = _sku_price(skus, rf"\b{family} (Predefined )?Instance Core\b", spot, region)
            ram = _sku_price(skus, rf"\b{family} (Predefined )?Instance Ram\b", spot, region)
            gpu = item.get("includes_gpu")
            gpu_price = 0.0
            if gpu:
                per_gpu = _sku_price(skus, rf"Nvidia {GPU_SKU_NAMES[gpu['type']]} GPU", spot, region)
                gpu_price = None if per_gpu is None else per_gpu * gpu["count"]
            if None not in (core, ram, gpu_price):
                vcpus = item.get("sustained_vcpus", item["vcpus"])  # shared-core E2 bills its sustained share
                price = vcpus * core + item["memory_gb"] * ram + gpu_price
        elif item["kind"] == "gpu" and item["name"] in GPU_SKU_NAMES:
            price = _sku_price(skus, rf"Nvidia {GPU_SKU_NAMES[item['name']]} GPU", spot, region)
        elif item["kind"] == "disk" and item["name"] in DISK_SKUS:
            price = _sku_price(skus, rf"^{DISK_SKUS[item['name']]}", spot, region)
        if price is not None:
            found[item["id"]] = round(price, 6)
    return found


def do_prices(sizes: list[dict], items: list[dict]) -> dict[str, dict]:
    """New monthly/hourly prices by catalogue id for droplet sizes listed by /v2/sizes."""
    by_slug = {s.get("slug"): s for s in sizes}
    found = {}
    for item in items:
        size = by_slug.get(item["name"]) if item["kind"] == "droplet" else None
        if size and size.get("price_monthly") is not None:
            found[item["id"]] = {
                "price": float(size["price_monthly"]),
                "price_hourly": float(size.get("price_hourly") or 0),
            }
    return found


def refresh(path: Path, env: dict | None = None, today: dt.date | None = None) -> str:
    """Update `path` from the live APIs and return a one-line summary; RefreshUnavailable otherwise."""
    env = os.environ if env is None else env
    gcp_key, do_token = env.get(GCP_KEY_ENV), env.get(DO_TOKEN_ENV)
    if not gcp_key and not do_token:
        raise RefreshUnavailable(f"no {GCP_KEY_ENV} or {DO_TOKEN_ENV} in the environment")
    data = json.loads(path.read_text())
    try:
        gcp = gcp_prices(fetch_gcp_skus(gcp_key), data["items"]) if gcp_key else {}
        do = do_prices(fetch_do_sizes(do_token), data["items"]) if do_token else {}
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise RefreshUnavailable(f"a price API answered in an unexpected shape ({exc!r})") from None
    date = (today or dt.date.today()).isoformat()
    for item in data["items"]:
        if item["id"] in gcp or item["id"] in do:
            item.pop("source_date", None)  # the price is now today's, not the old source file's
        if item["id"] in gcp:
            item.update(
                price=gcp[item["id"]],
                date=date,
                source="https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus",
            )
        elif item["id"] in do:
            item.update(do[item["id"]], date=date, source="https://api.digitalocean.com/v2/sizes")
    data["updated"] = date
    path.write_text(json.dumps(data, indent=1) + "\n")
    skipped = [name for name, ok in (("GCP", gcp_key), ("DigitalOcean", do_token)) if not ok]
    tail = f"; {' and '.join(skipped)} kept (no credentials)" if skipped else ""
    return f"refreshed {len(gcp)} GCP and {len(do)} DigitalOcean prices in {path}, dated {date}{tail}"
