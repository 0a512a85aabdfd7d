"""Pricing rules on hand-built plans: pricing is a pure function of a Plan, so each rule is tested alone."""

from __future__ import annotations

import json

import pytest

from infra.costs.catalogue import CATALOGUE_PATH, CatalogueError, load_catalogue
from infra.costs.pricing import effective_assumptions, price_plan
from infra.mock_plan import Plan, PlannedResource

CAT = load_catalogue()
H = CAT.hours_per_month
INSTANCE = "gcp:compute/instance:Instance"
CLUSTER = "gcp:container/cluster:Cluster"
POOL = "gcp:container/nodePool:NodePool"


def plan(*resources: PlannedResource, config: dict | None = None) -> Plan:
    return Plan(stack="t", config=config or {"gcp:zone": "us-central1-a"}, resources=list(resources), outputs={})


def vm(
    machine: str,
    gpus: list | None = None,
    spot: bool = False,
    hours: float | None = None,
    disk_gb: int = 100,
    disk_type: str = "pd-balanced",
) -> PlannedResource:
    scheduling: dict = {"provisioningModel": "SPOT" if spot else "STANDARD"}
    if hours:
        scheduling["maxRunDuration"] = {"seconds": int(hours * 3600)}
    inputs = {
        "machineType": machine,
        "zone": "us-central1-a",
        "scheduling": scheduling,
        "bootDisk": {"initializeParams": {"size": disk_gb, "type": disk_type}},
        "networkInterfaces": [{"network": "default", "accessConfigs": [{}]}],
    }
    if gpus:
        inputs["guestAccelerators"] = gpus
    return PlannedResource(INSTANCE, "vm", inputs)


def price(item_id: str) -> float:
    return CAT.by_id(item_id).price


def totals(estimate) -> dict:
    return estimate.to_dict()["totals"]


# --- catalogue -------------------------------------------------------------------------------------------


def test_every_catalogue_entry_has_a_source_and_a_date():
    raw = json.loads(CATALOGUE_PATH.read_text())
    assert len(raw["items"]) >= 30
    for item in raw["items"]:
        assert item["source"].startswith("https://"), item["id"]
        assert len(item["date"]) == 10 and item["date"][4] == "-", item["id"]
        for key in ("price", "unit", "region", "pricing"):
            assert key in item, (item["id"], key)
    assert all(why for why in raw["free_types"].values())
    assert all(entry["why"] for entry in raw["assumptions"].values())


def test_catalogue_holds_the_issue_prices_and_marks_k80_retired():
    expected = {
        "gce.machine.n1-standard-4": 0.190,
        "gce.machine.n1-standard-4.spot": 0.067,
        "gce.machine.n1-standard-8": 0.380,
        "gce.machine.n1-standard-8.spot": 0.134,
        "gce.machine.g2-standard-4": 0.707,
        "gce.machine.g2-standard-4.spot": 0.397,
        "gce.machine.e2-small": 0.0168,
        "gce.machine.e2-medium": 0.0335,
        "gce.machine.e2-standard-2": 0.0670,
        "gce.gpu.nvidia-tesla-t4": 0.35,
        "gce.gpu.nvidia-tesla-t4.spot": 0.14,
        "gce.gpu.nvidia-l4": 0.56,
        "gce.gpu.nvidia-l4.spot": 0.2231,
        "gce.gpu.nvidia-tesla-v100": 2.48,
        "gce.gpu.nvidia-tesla-p100": 1.46,
        "gce.disk.pd-standard": 0.04,
        "gce.disk.pd-balanced": 0.10,
        "gce.disk.pd-ssd": 0.17,
        "gke.cluster-fee": 0.10,
        "gke.free-tier-credit": 74.40,
        "gce.forwarding-rule": 0.025,
        "gar.storage": 0.10,
        "do.droplet.s-1vcpu-1gb": 6.0,
        "do.droplet.s-1vcpu-2gb": 12.0,
        "do.droplet.s-2vcpu-4gb": 24.0,
        "do.registry.starter": 0.0,
        "do.registry.basic": 5.0,
        "do.registry.professional": 20.0,
        "do.load-balancer": 12.0,
    }
    for item_id, value in expected.items():
        assert CAT.by_id(item_id).price == pytest.approx(value), item_id
    assert CAT.by_id("gce.gpu.nvidia-tesla-k80").retired == "2024-05-01"
    assert CAT.hours_per_month == 730


def test_a_catalogue_entry_without_a_source_is_rejected(tmp_path):
    raw = json.loads(CATALOGUE_PATH.read_text())
    del raw["items"][0]["source"]
    bad = tmp_path / "cat.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(CatalogueError, match="lacks source"):
        load_catalogue(bad)


# --- GCE VMs ---------------------------------------------------------------------------------------------


def test_n1_with_t4_adds_the_gpu_disk_and_ip():
    est = price_plan(plan(vm("n1-standard-4", [{"type": "nvidia-tesla-t4", "count": 1}])), CAT)
    expected = 0.19 + 0.35 + 100 * 0.10 / H + 0.005
    assert totals(est)["hourly"] == pytest.approx(expected)
    assert totals(est)["monthly"] == pytest.approx(expected * H)
    assert totals(est)["vcpus"] == 4


def test_g2_does_not_count_its_l4_twice():
    l4 = [{"type": "projects/p/zones/us-central1-a/acceleratorTypes/nvidia-l4", "count": 1}]
    est = price_plan(plan(vm("zones/us-central1-a/machineTypes/g2-standard-4", l4)), CAT)
    gpu_lines = [line for line in est.lines if line.category == "gpu"]
    assert [line.status for line in gpu_lines] == ["included"]
    assert all(line.item != "gce.gpu.nvidia-l4" for line in est.lines)
    assert totals(est)["hourly"] == pytest.approx(0.707 + 100 * 0.10 / H + 0.005)
    # without guestAccelerators the included L4 still shows, still at no extra cost
    bare = price_plan(plan(vm("g2-standard-4")), CAT)
    assert totals(bare)["hourly"] == pytest.approx(totals(est)["hourly"])
    assert any(line.status == "included" for line in bare.lines)


def test_spot_vm_uses_spot_prices_and_prices_one_training_run():
    est = price_plan(plan(vm("n1-standard-4", [{"type": "nvidia-tesla-t4", "count": 2}], spot=True, hours=6)), CAT)
    disk_hourly = 100 * 0.10 / H
    assert totals(est)["hourly"] == pytest.approx(0.067 + 2 * 0.14 + disk_hourly + 0.0025)
    (run,) = est.training_runs
    assert run["hours"] == 6 and run["hours_from"] == "maxRunDuration" and run["provisioning"] == "spot"
    assert run["on_demand"]["cost"] == pytest.approx(6 * (0.19 + 2 * 0.35 + disk_hourly + 0.005))
    assert run["spot"]["cost"] == pytest.approx(6 * (0.067 + 2 * 0.14 + disk_hourly + 0.0025))
    override = price_plan(
        plan(vm("n1-standard-4", [{"type": "nvidia-tesla-t4", "count": 1}], hours=6)), CAT, train_hours=2.5
    ).training_runs[0]
    assert override["hours"] == 2.5 and override["hours_from"] == "--train-hours"
    assert override["on_demand"]["cost"] == pytest.approx(2.5 * override["on_demand"]["hourly"])


def test_retired_k80_and_unknown_machine_types_are_unpriced_not_free():
    est = price_plan(plan(vm("n1-standard-4", [{"type": "nvidia-tesla-k80", "count": 1}])), CAT)
    (k80,) = [line for line in est.lines if line.category == "gpu"]
    assert k80.status == "unpriced" and k80.hourly is None and "retired since 2024-05-01" in k80.note
    assert totals(est)["unpriced"] == 1
    assert est.training_runs[0]["on_demand"]["cost"] is None  # a run cannot be priced without its GPU
    odd = price_plan(plan(vm("custom-6-20480")), CAT)
    assert [line.status for line in odd.lines if line.category == "compute"] == ["unpriced"]


def test_unknown_resource_type_shows_unpriced():
    mystery = PlannedResource("gcp:redis/instance:Instance", "cache", {"memorySizeGb": 1})
    est = price_plan(plan(mystery, vm("e2-small")), CAT)
    row = est.to_dict()["lines"][0]
    assert row["status"] == "unpriced" and row["hourly"] is None and row["monthly"] is None
    assert "not in the catalogue" in row["note"]
    assert totals(est)["unpriced"] == 1
    assert totals(est)["hourly"] == pytest.approx(0.0168 + 100 * 0.10 / H + 0.005)


def test_free_types_are_listed_as_free_with_a_reason():
    fw = PlannedResource("gcp:compute/firewall:Firewall", "ssh", {})
    provider = PlannedResource("pulumi:providers:gcp", "gcp", {})
    est = price_plan(plan(fw, provider), CAT)
    assert est.lines == []
    assert {f["type"] for f in est.free} == {"gcp:compute/firewall:Firewall", "pulumi:providers:gcp"}
    assert all(f["why"] for f in est.free)


# --- GKE -------------------------------------------------------------------------------------------------


def cluster(location: str, name: str = "gke") -> PlannedResource:
    return PlannedResource(CLUSTER, name, {"location": location, "removeDefaultNodePool": True, "initialNodeCount": 1})


def test_gke_fee_is_credited_for_one_zonal_cluster_only():
    zonal = price_plan(plan(cluster("us-central1-a")), CAT)
    assert totals(zonal)["monthly"] == pytest.approx(0.0)
    assert any(line.status == "credit" for line in zonal.lines)
    regional = price_plan(plan(cluster("us-central1")), CAT)
    assert totals(regional)["monthly"] == pytest.approx(0.10 * H)
    assert all(line.status != "credit" for line in regional.lines)
    two = price_plan(plan(cluster("us-central1-a", "a"), cluster("us-central1-b", "b")), CAT)
    assert totals(two)["monthly"] == pytest.approx(0.10 * H)  # the free tier covers one cluster per account


def test_autoscaling_node_pool_is_priced_at_min_and_max():
    pool = PlannedResource(
        POOL,
        "pool",
        {
            "cluster": "gke",
            "location": "us-central1-a",
            "autoscaling": {"minNodeCount": 1, "maxNodeCount": 3},
            "nodeConfig": {"machineType": "e2-medium", "diskSizeGb": 30, "diskType": "pd-standard"},
        },
    )
    est = price_plan(plan(cluster("us-central1-a"), pool), CAT)
    node_hourly = 0.0335 + 30 * 0.04 / H + 0.005
    t = totals(est)
    assert t["hourly"] == pytest.approx(node_hourly * 1)
    assert t["hourly_max"] == pytest.approx(node_hourly * 3)
    assert (t["vcpus"], t["vcpus_max"]) == (2, 6)
    regional_pool = PlannedResource(POOL, "pool", {**pool.inputs, "location": "us-central1"})
    regional = price_plan(plan(cluster("us-central1"), regional_pool), CAT)
    assert totals(regional)["hourly_max"] == pytest.approx(0.10 + node_hourly * 9)  # 3 zones x 3 nodes


def test_loadbalancer_service_on_gke_is_a_forwarding_rule():
    svc = PlannedResource("kubernetes:core/v1:Service", "svc", {"spec": {"type": "LoadBalancer"}})
    internal = PlannedResource("kubernetes:core/v1:Service", "internal", {"spec": {"type": "ClusterIP"}})
    est = price_plan(plan(cluster("us-central1-a"), svc, internal), CAT)
    assert totals(est)["hourly"] == pytest.approx(0.025)
    assert [f["name"] for f in est.free] == ["internal"]


# --- storage and DigitalOcean ----------------------------------------------------------------------------


def test_registry_and_bucket_storage_follow_the_documented_assumptions():
    repo = PlannedResource("gcp:artifactregistry/repository:Repository", "images", {"location": "us-central1"})
    bucket = PlannedResource("gcp:storage/bucket:Bucket", "runs", {"location": "US-CENTRAL1"})
    default = price_plan(plan(repo, bucket), CAT)
    gb_reg, gb_bucket = CAT.assumption("registry_storage_gb"), CAT.assumption("bucket_storage_gb")
    assert totals(default)["monthly"] == pytest.approx(max(0, gb_reg - 0.5) * 0.10 + gb_bucket * 0.020)
    bigger = price_plan(
        plan(repo, bucket),
        CAT,
        effective_assumptions(CAT, {"registry_storage_gb": 10.5, "bucket_storage_gb": 0}),
    )
    assert totals(bigger)["monthly"] == pytest.approx(10 * 0.10)


def test_droplet_costs_its_monthly_price_and_backups_add_a_fifth():
    droplet = PlannedResource("digitalocean:index/droplet:Droplet", "web", {"size": "s-1vcpu-2gb"})
    registry = PlannedResource(
        "digitalocean:index/containerRegistry:ContainerRegistry", "reg", {"subscriptionTierSlug": "basic"}
    )
    ip = PlannedResource("digitalocean:index/reservedIp:ReservedIp", "ip", {"region": "nyc3"})
    assign = PlannedResource("digitalocean:index/reservedIpAssignment:ReservedIpAssignment", "ipa", {})
    est = price_plan(plan(droplet, registry, ip, assign, config={}), CAT)
    assert totals(est)["monthly"] == pytest.approx(12.0 + 5.0)
    unassigned = price_plan(plan(ip, config={}), CAT)
    assert totals(unassigned)["monthly"] == pytest.approx(CAT.by_id("do.reserved-ip.unassigned").price)
    backed = PlannedResource(droplet.type, "web", {"size": "s-1vcpu-2gb", "backups": True})
    assert totals(price_plan(plan(backed, config={}), CAT))["monthly"] == pytest.approx(12.0 * 1.2)
