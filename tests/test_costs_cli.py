"""`python -m infra.costs` on the repo's real stacks, planned by the shared mock runner (infra.mock_plan)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from infra.costs.catalogue import load_catalogue
from infra.costs.cli import main
from infra.costs.pricing import price_plan
from infra.costs.report import build_report, read_benchmark
from infra.costs.table import render
from infra.mock_plan import PlannedResource, plan_stack, stack_files, stack_name
from robojam_format.layout import REPO_ROOT

CAT = load_catalogue()
STACKS = [stack_name(p) for p in stack_files()]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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
    priced = {(line.type, line.name) for line in estimate.lines} | {(f["type"], f["name"]) for f in estimate.free}
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
    (run,) = price_plan(plans["train"], CAT).training_runs
    assert run["hours"] == pytest.approx(limit_h) and run["hours_from"] == "maxRunDuration"
    assert run["on_demand"]["cost"] == pytest.approx(limit_h * run["on_demand"]["hourly"])
    assert run["spot"]["hourly"] < run["on_demand"]["hourly"]


def test_gke_fee_credited_for_the_zonal_cluster_and_not_a_regional_one(plans):
    plan = plans["gke"]
    cluster = plan.one("gcp:container/cluster:Cluster")
    zonal = price_plan(plan, CAT)
    credit = [line for line in zonal.lines if line.status == "credit"]
    assert len(credit) == 1 and credit[0].monthly == pytest.approx(-0.10 * CAT.hours_per_month)
    region = cluster.inputs["location"].rsplit("-", 1)[0]
    regional_cluster = dataclasses.replace(cluster, inputs={**cluster.inputs, "location": region})
    regional_plan = dataclasses.replace(
        plan, resources=[regional_cluster if r is cluster else r for r in plan.resources]
    )
    regional = price_plan(regional_plan, CAT)
    assert not [line for line in regional.lines if line.status == "credit"]
    fee = 0.10 * CAT.hours_per_month
    assert regional.to_dict()["totals"]["monthly"] > zonal.to_dict()["totals"]["monthly"] + fee - 0.01


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


def test_text_report_has_a_table_per_stack_and_a_comparison(capsys):
    code, out, _ = run_cli(capsys)
    assert code == 0
    for name in STACKS:
        assert f"Stack {name}" in out
    assert out.count("TOTAL") == len(STACKS)
    assert "Comparison" in out and "One training run" in out


def test_json_output_round_trips(capsys, plans):
    code, out, _ = run_cli(capsys, "--json")
    assert code == 0
    data = json.loads(out)
    bench = read_benchmark(REPO_ROOT / "benchmarks" / "latest.json")  # what the CLI reads by default
    expected = build_report([price_plan(plans[name], CAT) for name in STACKS], CAT, bench)
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


def test_cost_per_million_predictions_uses_the_benchmark(capsys, tmp_path):
    bench = tmp_path / "latest.json"
    bench.write_text(json.dumps({"requests_per_second_per_vcpu": 250.0}))
    code, out, _ = run_cli(capsys, "dev", "--json", "--benchmark", str(bench))
    assert code == 0
    (row,) = json.loads(out)["comparison"]
    assert row["vcpus"] > 0
    expected = row["hourly"] / (250.0 * row["vcpus"] * 3600) * 1e6
    assert row["cost_per_million"] == pytest.approx(expected)
    bench.write_text(json.dumps({"requests_per_second_per_vcpu": -3}))
    code, _, err = run_cli(capsys, "dev", "--benchmark", str(bench))
    assert code == 2 and len(err.strip().splitlines()) == 1


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
            ["--benchmark", "/nonexistent/latest.json"],
            "benchmark file /nonexistent/latest.json does not exist",
        ),
        (["--plot", "/nonexistent/dir/costs.png"], "folder /nonexistent/dir does not exist"),
        (["--registry-gb", "-1"], "must be >= 0"),
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
