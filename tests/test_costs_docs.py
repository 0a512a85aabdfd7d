"""docs/costs.md's worked example, recomputed from the catalogue and the capacity record without the pricing code;
the usage lines against a hand computation."""

from __future__ import annotations

import json

import pytest

from infra.costs.catalogue import load_catalogue
from infra.costs.cli import main
from infra.costs.pricing import effective_assumptions, price_plan
from infra.mock_plan import plan_stack
from robojam_format.layout import REPO_ROOT

DOC = (REPO_ROOT / "docs" / "costs.md").read_text()
RAW = json.loads((REPO_ROOT / "infra" / "costs" / "catalogue.json").read_text())
PRICE = {item["id"]: item["price"] for item in RAW["items"]}
RECORD = json.loads((REPO_ROOT / "benchmarks" / "capacity.json").read_text())
GIB = 2**30


def worked_example() -> dict:
    """The page's arithmetic, by hand: 730 h, one vCPU at the record's rate, bytes x price per GiB."""
    monthly = PRICE["do.droplet.s-1vcpu-1gb"] + PRICE["do.registry.basic"]
    hourly = monthly / 730
    rps = RECORD["requests_per_second"]
    wire = RECORD["bytes_per_request"]
    return {
        "monthly": monthly,
        "hourly": hourly,
        "rps": rps,
        "per_million": hourly / (rps * 3600) * 1e6,
        "egress": 1e6 * wire["reply"] / GIB * PRICE["gcp.usage.internet-egress"],
        "lb": 1e6 * (wire["request"] + wire["reply"]) / GIB * PRICE["gcp.usage.lb-data-processing"],
    }


def test_the_worked_example_on_the_page_recomputes_from_the_catalogue():
    ex = worked_example()
    for text in (
        f"**${ex['monthly']:.2f}/month**",
        f"**${ex['monthly']:.2f} / 730 h = ${ex['hourly']:.6f}/h**",
        f"**{ex['rps']:g} req/s**",
        f"**${ex['per_million']:.4f}**",
        f"**${ex['egress']:.4f}**",
        f"**${ex['lb']:.4f}**",
    ):
        assert text in DOC, text


def test_the_worked_example_matches_the_pricing_code(capsys):
    ex = worked_example()
    assert main(["dev", "gke", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    dev, gke = report["comparison"]
    assert dev["monthly"] == pytest.approx(ex["monthly"]) and dev["hourly"] == pytest.approx(ex["hourly"])
    assert dev["capacity_rps"] == pytest.approx(ex["rps"]) and dev["cost_per_million"] == pytest.approx(
        ex["per_million"]
    )
    usage = {line["component"]: line["monthly"] for line in report["stacks"][1]["lines"] if line["category"] == "usage"}
    assert usage["internet-egress (usage)"] == pytest.approx(ex["egress"])
    assert usage["lb-data-processing (usage)"] == pytest.approx(ex["lb"])
    assert gke["usage_per_million"] == pytest.approx(ex["egress"] + ex["lb"])  # logging: inside the free 50 GiB


def test_usage_lines_follow_the_traffic_and_the_free_allotments():
    cat = load_catalogue()
    values = effective_assumptions(cat, {"requests_per_month": 100e6})
    est = price_plan(plan_stack("gke"), cat, values)
    usage = {line.component: line for line in est.lines if line.category == "usage"}
    log_gib = 100e6 * values["log_bytes_per_request"] / GIB  # 93.1 GiB, of which 50 are free
    assert usage["cloud-logging (usage)"].monthly == pytest.approx((log_gib - 50) * 0.50)
    assert usage["internet-egress (usage)"].monthly == pytest.approx(100e6 * values["reply_bytes"] / GIB * 0.12)
    droplet = price_plan(plan_stack("dev"), cat, effective_assumptions(cat, {"requests_per_month": 400e6}))
    (transfer,) = [line for line in droplet.lines if line.category == "usage"]
    out_gib = 400e6 * values["reply_bytes"] / GIB  # 1,342 GiB out, 1,000 GiB included with s-1vcpu-1gb
    assert transfer.quantity == pytest.approx(out_gib - 1000) and transfer.monthly == pytest.approx(
        (out_gib - 1000) * 0.01
    )
    assert droplet.fixed_totals.monthly == pytest.approx(11.0)  # usage is not part of the size's cost
