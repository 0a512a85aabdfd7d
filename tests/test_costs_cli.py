"""`python -m infra.costs` on the repo's real stacks, planned by the shared mock runner (infra.mock_plan)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from infra.costs.catalogue import load_catalogue
from infra.costs.cli import main
from infra.costs.measured import read_capacity
from infra.costs.pricing import effective_assumptions, price_plan
from infra.costs.report import build_report
from infra.costs.table import render
from infra.mock_plan import PlannedResource, plan_stack, stack_files, stack_name
from robojam_format.layout import REPO_ROOT

CAT = load_catalogue()
TODAY = dt.date.today()
STACKS = [stack_name(p) for p in stack_files()]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RECORD = json.loads((REPO_ROOT / "benchmarks" / "capacity.json").read_text())


def capacity_file(tmp_path, rps: float, **changes) -> str:
    """A capacity record like the committed one, measuring `rps` on one vCPU."""
    path = tmp_path / "capacity.json"
    path.write_text(json.dumps({**RECORD, "requests_per_second": rps, "vcpus": 1, **changes}))
    return str(path)


@pytest.fixture(scope="module")
def plans() -> dict:
    return {name: plan_stack(name) for name in STACKS}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_repo_has_the_three_stacks():
    assert {"dev", "gke", "train"} <= set(STACKS)


@pytest.mark.parametrize("name", ["dev", "gke", "train"])
def test_each_repo_stack_is_priced_without_unpriced_items(plans, name):
    estimate = price_plan(plans[name], CAT)
    totals = estimate.to_dict()["totals"]
    assert estimate.lines, name
    assert [f"{u.type} {u.name}: {u.note}" for u in estimate.unpriced] == []
    assert totals["monthly"] > 0 and totals["hourly"] > 0
    priced = {(line.type, line.name) for line in estimate.lines} | {(f.type, f.name) for f in estimate.free}
    assert priced == {(r.type, r.name) for r in plans[name].resources}  # every resource is accounted for


def test_droplet_stack_costs_the_droplet_plus_the_registry(plans):
    plan = plans["dev"]
    droplet = plan.one("digitalocean:index/droplet:Droplet")
    expected = CAT.find("droplet", droplet.inputs["size"]).price
    for registry in plan.of_type("digitalocean:index/containerRegistry:ContainerRegistry"):
        expected += CAT.find("registry", registry.inputs["subscriptionTierSlug"]).price
    totals = price_plan(plan, CAT).to_dict()["totals"]
    assert totals["monthly"] == pytest.approx(expected)
    assert totals["monthly_max"] == pytest.approx(expected)


def test_g2_train_stack_does_not_double_count_its_l4():
    plan = plan_stack("train", overrides={"robojam:machineType": "g2-standard-4", "robojam:gpuType": "nvidia-l4"})
    vm = plan.one("gcp:compute/instance:Instance")
    assert "nvidia-l4" in json.dumps(vm.inputs.get("guestAccelerators", []))
    estimate = price_plan(plan, CAT)
    vm_lines = [line for line in estimate.lines if line.type == vm.type]
    assert not [line for line in vm_lines if line.item and line.item.startswith("gce.gpu.nvidia-l4")]
    assert [line.status for line in vm_lines if line.category == "gpu"] == ["included"]
    pricing = "spot" if vm.inputs["scheduling"].get("provisioningModel") == "SPOT" else "on-demand"
    machine = CAT.find("machine", "g2-standard-4", pricing).price
    others = sum(line.hourly for line in vm_lines if line.category not in ("compute", "gpu"))
    assert sum(line.hourly for line in vm_lines) == pytest.approx(machine + others)


def test_train_stack_prices_one_training_run_from_its_run_limit(plans):
    vm = plans["train"].one("gcp:compute/instance:Instance")
    limit_h = float(vm.inputs["scheduling"]["maxRunDuration"]["seconds"]) / 3600
    estimate = price_plan(plans["train"], CAT)
    (run,) = estimate.training_runs
    assert run.hours == pytest.approx(limit_h) and run.hours_from == "maxRunDuration"
    assert run.on_demand.cost == pytest.approx(limit_h * run.on_demand.hourly)
    assert run.spot.hourly < run.on_demand.hourly
    disk = next(line for line in estimate.lines if line.component.startswith("boot disk"))
    assert disk.monthly == pytest.approx(100 * 0.10)  # the disk bills while the VM is stopped between runs
    monthly = estimate.to_dict()["totals"]["monthly"]
    assert monthly == pytest.approx(run.idle_monthly + 4 * run.on_demand.cost) and monthly < 30


def test_budget_checks_the_runs_per_month_not_730_hours(capsys):
    code, out, err = run_cli(capsys, "train", "--max-monthly", "30")
    assert code == 0 and err == "" and "within" in out  # 4 runs: about $23, not the 730 h figure of ~$408
    code, _, err = run_cli(capsys, "train", "--max-monthly", "30", "--runs-per-month", "8")
    assert code == 1 and "'train'" in err and "(8 training runs a month)" in err


def test_gke_fee_credited_for_the_zonal_cluster(plans):
    zonal = price_plan(plans["gke"], CAT)
    credit = [line for line in zonal.lines if line.status == "credit"]
    assert len(credit) == 1 and credit[0].monthly == pytest.approx(-0.10 * CAT.hours_per_month)


def test_pods_fit_raises_the_gke_minimum_on_the_repo_stack(plans):
    plan = plans["gke"]
    pool = plan.one("gcp:container/nodePool:NodePool")
    configured = pool.inputs["autoscaling"]["minNodeCount"]
    estimate = price_plan(plan, CAT)
    nodes = next(line for line in estimate.lines if line.type == pool.type and line.category == "compute")
    containers = plan.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]["containers"]
    pod_m = sum(int(c["resources"]["requests"]["cpu"].rstrip("m")) for c in containers)  # sidecars included
    assert len(containers) >= 1 and pod_m >= 250
    # two replicas + GKE 1.30's system pods (1345m on two nodes) > two e2-medium (2 x 940m): three nodes
    assert configured == 1 and nodes.quantity == 3
    assert f"minimum raised from {configured} to 3 nodes: 2 x {pod_m}m CPU" in nodes.note
    assert "at most 3 of the HPA's 6 replicas fit on 3 node(s)" in nodes.note
    assert "a rollout" not in nodes.note  # the surge pod fits on the three nodes
    assert estimate.fixed_totals.monthly == pytest.approx(132.62, abs=0.01)  # not $56.40 (usage charges apart)


def test_reserved_ip_of_a_droplet_with_a_domain_is_free_while_assigned():
    plan = plan_stack("dev", overrides={"robojam:domain": "jam.example.org"})
    (ip,) = [line for line in price_plan(plan, CAT).lines if line.type == "digitalocean:index/reservedIp:ReservedIp"]
    assert ip.component == "reserved IPv4 (assigned)" and ip.monthly == 0.0
    unassigned = dataclasses.replace(
        plan, resources=[r for r in plan.resources if not r.type.endswith(":ReservedIpAssignment")]
    )
    (lone,) = [x for x in price_plan(unassigned, CAT).lines if x.type == ip.type]
    assert lone.monthly == pytest.approx(5.0)


def test_gke_capacity_follows_the_hpa_steps_relative_to_the_cpu_request(capsys, tmp_path, plans):
    code, out, _ = run_cli(capsys, "gke", "--json", "--capacity", capacity_file(tmp_path, 20.0))
    assert code == 0
    (row,) = json.loads(out)["comparison"]
    hpa = plans["gke"].one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    target = hpa.inputs["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] / 100
    # two pods of 250m + the sidecar's 50m hold 2 x 0.3 x target x 1.1 (tolerance) vCPUs before the HPA adds one
    assert row["serving_vcpus"] == pytest.approx(2 * 0.3 * target * 1.1)
    assert row["capacity_rps"] == pytest.approx(20.0 * 2 * 0.3 * target * 1.1)
    sustained = CAT.find("machine", "e2-medium").extra["sustained_vcpus"]
    assert row["capacity_rps_max"] == pytest.approx(20.0 * 3 * sustained)  # 4 pods on 3 nodes: the nodes' CPU
    assert row["cost_per_million"] == pytest.approx(row["hourly"] / (row["capacity_rps"] * 3600) * 1e6, rel=0.01)


def test_break_even_table_for_the_repo_stacks(capsys, plans):
    code, out, _ = run_cli(capsys, "--json")
    report = json.loads(out)
    rate = report["capacity"]["requests_per_second_per_vcpu"]
    result = report["break_even"]
    droplet = rate * 1.0  # s-1vcpu-1gb: one vCPU at the record's rate
    first, second = result["ranges"]
    assert (first["stack"], second["stack"]) == ("dev", "gke")
    assert first["to_rps"] == pytest.approx(droplet) and first["monthly"] == pytest.approx(11.0)  # droplet + basic
    assert second["from_rps"] == pytest.approx(droplet)
    assert second["monthly"] == pytest.approx(132.62, abs=0.01)  # three nodes from the start (system pods)
    assert result["max_rps"] == pytest.approx(rate * 3 * 1.0)  # three e2-medium nodes, one sustained vCPU each
    gke_steps = [level["costs"]["gke"] for level in result["levels"]]
    assert gke_steps == pytest.approx([132.62] * len(gke_steps), abs=0.01)
    code, text, _ = run_cli(capsys)
    assert "Break-even" in text and f"dev (droplet) is the cheapest up to {droplet:.1f} req/s at $11.00/month" in text


def test_a_capacity_record_for_other_weights_is_refused_in_one_line(capsys, tmp_path):
    other = capacity_file(tmp_path, 100.0, weights={"path": "x.npz", "sha256": "0" * 64})
    code, _, err = run_cli(capsys, "dev", "--capacity", other)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "measured for weights sha256 000000000000" in err and "make bench-capacity" in err
    code, _, _ = run_cli(capsys, "train", "--capacity", other)  # a training stack serves nothing: not checked
    assert code == 0


def test_the_committed_capacity_record_is_of_the_shipped_weights_through_caddy():
    from infra.costs.measured import sha256_of
    from robojam_format.layout import SHIPPED_WEIGHTS

    assert RECORD["weights"]["sha256"] == sha256_of(SHIPPED_WEIGHTS)
    assert RECORD["vcpus"] == 1 and "Caddy" in RECORD["setup"] and RECORD["cpu"]
    held = [row for row in RECORD["levels"] if row["holds_objective"]]
    assert RECORD["requests_per_second"] == max(row["req_per_s"] for row in held)
    assert all(row["p99_ms"] <= RECORD["objective"]["p99_ms_at_most"] and row["shed_share"] == 0 for row in held)


def test_sizes_break_even_covers_droplet_sizes_and_gke_node_counts(capsys, tmp_path):
    target = tmp_path / "sizes.png"
    code, out, _ = run_cli(capsys, "dev", "gke", "--json", "--sizes", "--plot", str(target))
    assert code == 0 and target.read_bytes()[:8] == PNG_MAGIC
    result = json.loads(out)["break_even_sizes"]
    names = set(result["levels"][0]["costs"])
    droplets = {i.name for i in CAT.items if i.kind == "droplet"}
    assert droplets | {"gke-8-nodes"} == names and {"s-4vcpu-8gb", "c-2"} <= names
    rate = json.loads(out)["capacity"]["requests_per_second_per_vcpu"]
    at = {level["rps"]: level["costs"] for level in result["levels"]}
    assert at[round(rate * 4, 6)]["s-4vcpu-8gb"] == pytest.approx(48.0 + 5.0)  # 4 vCPUs; the basic registry


def test_unknown_resource_type_in_a_real_plan_shows_unpriced(plans):
    plan = plans["dev"]
    odd = PlannedResource("digitalocean:index/databaseCluster:DatabaseCluster", "db", {"size": "db-s-1vcpu-1gb"})
    estimate = price_plan(dataclasses.replace(plan, resources=[*plan.resources, odd]), CAT)
    assert estimate.to_dict()["totals"]["monthly"] == pytest.approx(
        price_plan(plan, CAT).to_dict()["totals"]["monthly"]
    )
    text = render(build_report([estimate], CAT)).splitlines()
    header = next(i for i, t in enumerate(text) if t.startswith(" db (digitalocean:index/databaseCluster"))
    assert text[header + 1].count("unpriced") == 3  # unit price, hourly and monthly columns


def test_each_line_shows_its_source_and_age_and_spot_is_indicative(capsys):
    code, out, _ = run_cli(capsys, "train", "--json")
    report = json.loads(out)
    today = dt.date.fromisoformat(report["today"])
    text = render(report)
    for line in report["stacks"][0]["lines"]:
        age = (today - dt.date.fromisoformat(line["price_date"])).days
        assert f"{line['source_label']}, {age} d" in text, line["component"]
    assert "~ = spot price, indicative" in text and "spot ~$" in text
    spot = plan_stack("train", overrides={"robojam:spot": True})
    spot_lines = [line for line in price_plan(spot, CAT).lines if line.category in ("compute", "gpu")]
    assert spot_lines and all(line.indicative and "(spot, indicative)" in line.component for line in spot_lines)


def test_an_old_catalogue_prints_one_warning_suggesting_refresh(plans):
    oldest = CAT.oldest_price().price_date
    estimates = [price_plan(plans["dev"], CAT)]
    stale = render(build_report(estimates, CAT, today=oldest + dt.timedelta(days=91))).splitlines()
    warnings = [t for t in stale if t.startswith("warning: the oldest price")]
    assert len(warnings) == 1 and "91 days old" in warnings[0] and "--refresh" in warnings[0]
    fresh = render(build_report(estimates, CAT, today=oldest + dt.timedelta(days=90)))
    assert "warning: the oldest price" not in fresh


def test_text_report_has_a_table_per_stack_and_a_comparison(capsys):
    code, out, _ = run_cli(capsys)
    assert code == 0
    for name in STACKS:
        assert f"Stack {name}" in out
    assert out.count("TOTAL") == len(STACKS)
    assert "Comparison" in out and "One training run" in out and "Break-even" in out


def test_json_output_round_trips(capsys, plans):
    code, out, _ = run_cli(capsys, "--json")
    assert code == 0
    data = json.loads(out)
    path = REPO_ROOT / "benchmarks" / "capacity.json"  # what the CLI reads by default
    record = read_capacity(path, "benchmarks/capacity.json")
    wire = {"request_bytes": record.request_bytes, "reply_bytes": record.reply_bytes}
    values = {**effective_assumptions(CAT), **wire}
    estimates = [price_plan(plans[name], CAT, values) for name in STACKS]
    expected = build_report(estimates, CAT, record, today=TODAY)
    assert data == expected
    assert [s["stack"] for s in data["stacks"]] == STACKS


def test_budget_flag_fails_over_budget_and_passes_under(capsys):
    code, _, err = run_cli(capsys, "dev", "--max-monthly", "1")
    assert code == 1
    assert err.strip().splitlines() == [line for line in err.strip().splitlines() if "over budget" in line]
    assert "'dev'" in err and "$1.00" in err
    code, out, err = run_cli(capsys, "--max-monthly", "1000000")
    assert code == 0 and err == "" and "within" in out


def test_plot_writes_a_png(capsys, tmp_path):
    target = tmp_path / "costs.png"
    code, _, _ = run_cli(capsys, "--plot", str(target))
    assert code == 0
    assert target.read_bytes()[:8] == PNG_MAGIC
    assert target.stat().st_size > 5000


def test_cost_per_million_predictions_uses_the_capacity_record(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "dev", "--json", "--capacity", capacity_file(tmp_path, 250.0))
    assert code == 0
    (row,) = json.loads(out)["comparison"]
    assert row["serving_vcpus"] == 1 and row["capacity_rps"] == pytest.approx(250.0)  # a droplet at the record's rate
    expected = (11.0 / 730) / (250.0 * row["serving_vcpus"] * 3600) * 1e6  # the month's list price over 730 h
    assert row["cost_per_million"] == pytest.approx(expected)
    code, _, err = run_cli(capsys, "dev", "--capacity", capacity_file(tmp_path, -3))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "requests_per_second" in err


# --- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, words",
    [
        (["nosuchstack"], "unknown stack 'nosuchstack'"),
        (["--max-monthly", "-5"], "must be >= 0"),
        (["--max-monthly", "lots"], "is not a number"),
        (["--train-hours", "0"], "must be > 0"),
        (["--catalogue", "/nonexistent/cat.json"], "does not exist"),
        (
            ["--capacity", "/nonexistent/capacity.json"],
            "capacity file /nonexistent/capacity.json does not exist",
        ),
        (["--plot", "/nonexistent/dir/costs.png"], "folder /nonexistent/dir does not exist"),
        (["--registry-gb", "-1"], "must be >= 0"),
        (["--runs-per-month", "-1"], "must be >= 0"),
        (["--requests-per-month", "-1"], "must be >= 0"),
        (["--frobnicate"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_exit_2_without_traceback(argv, words):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "infra.costs", *argv],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
