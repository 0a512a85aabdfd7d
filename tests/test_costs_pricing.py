"""Pricing rules on hand-built plans: pricing is a pure function of a Plan, so each rule is tested alone."""

from __future__ import annotations

import inspect
import json

import pytest

from infra.costs import capacity, estimate
from infra.costs.catalogue import CATALOGUE_PATH, CatalogueError, Item, load_catalogue
from infra.costs.pricing import effective_assumptions, price_plan
from infra.mock_plan import Plan, PlannedResource

CAT = load_catalogue()
H = CAT.hours_per_month
INSTANCE = "gcp:compute/instance:Instance"
CLUSTER = "gcp:container/cluster:Cluster"
POOL = "gcp:container/nodePool:NodePool"
SERVICE = "kubernetes:core/v1:Service"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
DROPLET = "digitalocean:index/droplet:Droplet"
DOCR = "digitalocean:index/containerRegistry:ContainerRegistry"


GCP_STACK = {"robojam:target": "gke", "gcp:project": "robojam-test", "gcp:zone": "us-central1-a"}  # valid settings


def plan(*resources: PlannedResource, config: dict | None = None) -> Plan:
    """A plan in a us-central1 stack; `config={}` makes a bare plan (no stack settings, no default region)."""
    return Plan(stack="t", config=GCP_STACK if config is None else config, resources=list(resources), outputs={})


def vm(
    machine: str,
    gpus: list | None = None,
    spot: bool = False,
    hours: float | None = None,
    disk_gb: int = 100,
    disk_type: str = "pd-balanced",
    action: str = "STOP",
) -> PlannedResource:
    scheduling: dict = {"provisioningModel": "SPOT" if spot else "STANDARD", "instanceTerminationAction": action}
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
    assert len(raw["items"]) >= 25
    for item in raw["items"]:
        assert item["source"].startswith("https://"), item["id"]
        assert len(item["date"]) == 10 and item["date"][4] == "-", item["id"]
        for key in ("price", "unit", "region", "pricing"):
            assert key in item, (item["id"], key)
    assert all(why for why in raw["free_types"].values())
    assert all(entry["why"] for entry in raw["assumptions"].values())


def test_catalogue_holds_the_checked_prices():
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
        "gce.disk.pd-balanced": 0.10,
        "gke.cluster-fee": 0.10,
        "gke.free-tier-credit": 74.40,
        "gce.forwarding-rule.first-five": 0.025,
        "gce.forwarding-rule.additional": 0.01,
        "gar.storage": 0.10,
        "do.droplet.s-1vcpu-1gb": 6.0,
        "do.droplet.s-1vcpu-2gb": 12.0,
        "do.droplet.s-2vcpu-4gb": 24.0,
        "do.registry.starter": 0.0,
        "do.registry.basic": 5.0,
        "do.registry.professional": 20.0,
        "do.reserved-ip.unassigned": 5.0,
        "do.droplet-backups.daily": 0.30,
        "do.droplet-backups.weekly": 0.20,
    }
    for item_id, value in expected.items():
        assert CAT.by_id(item_id).price == pytest.approx(value), item_id
    assert CAT.hours_per_month == 730
    for gpu in ("nvidia-tesla-t4", "nvidia-tesla-v100", "nvidia-tesla-p100"):  # Cyclenerd lists no GPU prices
        assert "skypilot-org/skypilot-catalog" in CAT.find("gpu", gpu).source


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
    assert run.hours == 6 and run.hours_from == "maxRunDuration" and run.provisioning == "spot"
    # a run costs what bills while the VM runs; the boot disk bills all month anyway, so it is not in the run
    assert run.on_demand.cost == pytest.approx(6 * (0.19 + 2 * 0.35 + 0.005))
    assert run.spot.cost == pytest.approx(6 * (0.067 + 2 * 0.14 + 0.0025))
    assert run.spot.indicative and not run.on_demand.indicative
    assert all(line.indicative for line in est.lines if line.item and line.item.endswith(".spot"))
    override = price_plan(
        plan(vm("n1-standard-4", [{"type": "nvidia-tesla-t4", "count": 1}], hours=6)), CAT, train_hours=2.5
    ).training_runs[0]
    assert override.hours == 2.5 and override.hours_from == "--train-hours"
    assert override.on_demand.cost == pytest.approx(2.5 * override.on_demand.hourly)


def test_run_limited_vm_bills_runs_per_month_and_its_disk_all_month():
    t4 = [{"type": "nvidia-tesla-t4", "count": 1}]
    run_cost = 6 * (0.19 + 0.35 + 0.005)
    disk_month = 100 * 0.10
    est = price_plan(plan(vm("n1-standard-4", t4, hours=6)), CAT)
    assert totals(est)["monthly"] == pytest.approx(4 * run_cost + disk_month)  # not 730 h of GPU VM
    (run,) = est.training_runs
    assert run.runs_per_month == 4 and run.idle_monthly == pytest.approx(disk_month)
    assert run.monthly == pytest.approx(totals(est)["monthly"])
    eight = price_plan(plan(vm("n1-standard-4", t4, hours=6)), CAT, effective_assumptions(CAT, {"runs_per_month": 8}))
    assert totals(eight)["monthly"] == pytest.approx(8 * run_cost + disk_month)
    # a run limit that deletes the VM deletes its boot disk too: the disk bills only while a run lasts
    deleted = price_plan(plan(vm("n1-standard-4", t4, hours=6, action="DELETE")), CAT)
    disk_hourly = disk_month / H
    assert totals(deleted)["monthly"] == pytest.approx(4 * (run_cost + 6 * disk_hourly))
    assert deleted.training_runs[0].idle_monthly == pytest.approx(0.0, abs=1e-9)


def test_unknown_machine_types_are_unpriced_not_free():
    odd = price_plan(plan(vm("custom-6-20480")), CAT)
    assert [line.status for line in odd.lines if line.category == "compute"] == ["unpriced"]
    assert totals(odd)["unpriced"] == 1


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
    api = PlannedResource("gcp:projects/service:Service", "container-api", {"service": "container.googleapis.com"})
    est = price_plan(plan(fw, provider, api), CAT)
    assert est.lines == ()
    assert {f.type for f in est.free} == {fw.type, provider.type, api.type}
    assert all(f.why for f in est.free)


def test_lines_come_from_one_keyword_only_builder():
    resource, *rest = inspect.signature(estimate.line).parameters.values()
    assert resource.name == "res" and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest)


def test_every_priced_line_carries_its_source_and_price_date():
    est = price_plan(plan(vm("n1-standard-4", [{"type": "nvidia-tesla-t4", "count": 1}], hours=6)), CAT)
    for line in est.lines:
        item = CAT.by_id(line.item)
        assert line.source == item.source and line.price_date == item.price_date.isoformat()
    gpu = next(line for line in est.lines if line.category == "gpu")
    assert gpu.source_label == "github.com/skypilot-org"


# --- GKE -------------------------------------------------------------------------------------------------


def cluster(location: str = "us-central1-a", name: str = "gke") -> PlannedResource:
    return PlannedResource(CLUSTER, name, {"location": location, "removeDefaultNodePool": True, "initialNodeCount": 1})


def pool(machine: str = "e2-medium", lo: int = 1, hi: int = 3) -> PlannedResource:
    inputs = {
        "cluster": "gke",
        "location": "us-central1-a",
        "autoscaling": {"minNodeCount": lo, "maxNodeCount": hi},
        "nodeConfig": {"machineType": machine, "diskSizeGb": 30, "diskType": "pd-balanced"},
    }
    return PlannedResource(POOL, "pool", inputs)


def deployment(replicas: int, cpu: str = "250m", memory: str = "256Mi", sidecar: dict | None = None):
    containers = [{"name": "app", "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": "1"}}}]
    if sidecar:
        containers.append({"name": "proxy", "resources": {"requests": sidecar}})
    spec = {"replicas": replicas, "template": {"spec": {"containers": containers}}}
    hpa = {
        "minReplicas": replicas,
        "maxReplicas": replicas * 3,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"averageUtilization": 70}}}],
    }
    return [PlannedResource(DEPLOYMENT, "app", {"spec": spec}), PlannedResource(HPA, "hpa", {"spec": hpa})]


def test_gke_fee_is_credited_for_one_zonal_cluster_only():
    zonal = price_plan(plan(cluster()), CAT)
    assert totals(zonal)["monthly"] == pytest.approx(0.0)
    assert any(line.status == "credit" for line in zonal.lines)
    two = price_plan(plan(cluster("us-central1-a", "a"), cluster("us-central1-b", "b")), CAT)
    assert totals(two)["monthly"] == pytest.approx(0.10 * H)  # the free tier covers one cluster per account


def test_autoscaling_node_pool_is_priced_at_min_and_max():
    est = price_plan(plan(cluster(), pool()), CAT)
    node_hourly = 0.0335 + 30 * 0.10 / H + 0.005
    t = totals(est)
    assert t["hourly"] == pytest.approx(node_hourly * 1)
    assert t["hourly_max"] == pytest.approx(node_hourly * 3)


def test_sustained_vcpus_of_shared_core_types():
    assert capacity.sustained_vcpus(CAT.find("machine", "e2-small")) == 0.5
    assert capacity.sustained_vcpus(CAT.find("machine", "e2-medium")) == 1.0
    assert capacity.sustained_vcpus(CAT.find("machine", "e2-standard-2")) == 2.0
    assert capacity.sustained_vcpus(CAT.find("machine", "n1-standard-4")) == 4.0
    est = price_plan(plan(cluster(), pool("e2-medium", 2, 3), *deployment(2)), CAT)
    # the HPA's steps: n pods of 250m at 70 % (+10 % tolerance) hold n x 0.1925 vCPUs; the last (4 fit on 3 nodes)
    # serves what the nodes sustain: 3 x 1 vCPU, not 3 x 2
    assert [s.serving_vcpus for s in est.serving.steps] == pytest.approx([0.385, 0.5775, 3.0])
    assert [(s.replicas, s.units) for s in est.serving.steps] == [(2, 2), (3, 3), (4, 3)]


def test_gke_allocatable_follows_the_documented_reservations():
    n2 = Item("x", "gcp", "machine", "n2-highmem-4", "on-demand", 0.1, "hour", "us-central1", "https://x", "2026-12-01",
              {"vcpus": 4, "memory_gb": 32})  # fmt: skip
    cpu_m, mem_mib = capacity.gke_allocatable(n2, CAT)
    assert cpu_m == 3920  # measured on GKE 1.25 (2i2c-org/infrastructure#2121)
    # 32 GiB - (4 x 25% + 4 x 20% + 8 x 10% + 16 x 6%) - 100 MiB eviction threshold
    assert mem_mib / 1024 == pytest.approx(32 - 3.56 - 100 / 1024, abs=0.01)
    assert capacity.gke_allocatable(CAT.find("machine", "e2-medium"), CAT) == (940, 2809)  # measured
    assert capacity.gke_allocatable(CAT.find("machine", "e2-small"), CAT) is None  # shared-core, not measured


def test_pods_fit_raises_the_minimum_node_count_with_a_note():
    est = price_plan(plan(cluster(), pool("e2-medium", 1, 3), *deployment(2)), CAT)
    nodes = est.lines[next(i for i, line in enumerate(est.lines) if line.component == "e2-medium")]
    assert (nodes.quantity, nodes.quantity_max) == (2, 3)  # 2 x 250m + 716m of system pods > 940m
    assert "minimum raised from 1 to 2" in nodes.note
    small = price_plan(plan(cluster(), pool("e2-medium", 1, 3), *deployment(1, cpu="100m")), CAT)
    assert next(line for line in small.lines if line.component == "e2-medium").quantity == 1
    roomy = price_plan(plan(cluster(), pool("e2-standard-2", 1, 3), *deployment(2)), CAT)  # 1930m allocatable
    assert next(line for line in roomy.lines if line.component == "e2-standard-2").quantity == 1


def test_pods_fit_counts_every_container_of_the_pod():
    alone = price_plan(plan(cluster(), pool("e2-standard-2", 1, 3), *deployment(3, cpu="250m")), CAT)
    with_proxy = price_plan(
        plan(cluster(), pool("e2-standard-2", 1, 3), *deployment(3, cpu="250m", sidecar={"cpu": "200m"})), CAT
    )
    assert next(line for line in alone.lines if line.category == "compute").quantity == 1  # 750m + 716m <= 1930m
    assert next(line for line in with_proxy.lines if line.category == "compute").quantity == 2  # 1350m + 716m


def test_pods_that_never_fit_are_a_warning():
    est = price_plan(plan(cluster(), pool("e2-medium", 1, 1), *deployment(3)), CAT)
    assert any("pods do not fit" in w for w in est.warnings)


def test_forwarding_rules_first_five_share_one_rate_then_each_extra_costs_less():
    services = [PlannedResource(SERVICE, f"svc{i}", {"spec": {"type": "LoadBalancer"}}) for i in range(7)]
    internal = PlannedResource(SERVICE, "internal", {"spec": {"type": "ClusterIP"}})
    credit_only = price_plan(plan(cluster()), CAT).fixed_totals.hourly  # usage charges follow traffic, not rules
    one = price_plan(plan(cluster(), services[0], internal), CAT)
    assert one.fixed_totals.hourly - credit_only == pytest.approx(0.025)
    assert [f.name for f in one.free] == ["internal"]
    five = price_plan(plan(cluster(), *services[:5]), CAT)
    assert five.fixed_totals.hourly - credit_only == pytest.approx(0.025)
    seven = price_plan(plan(cluster(), *services), CAT)
    assert seven.fixed_totals.hourly - credit_only == pytest.approx(0.025 + 2 * 0.01)
    traffic = [(line.name, line.component) for line in seven.lines if line.category == "usage" and line.type == SERVICE]
    assert traffic == [("svc0", "internet-egress (usage)"), ("svc0", "lb-data-processing (usage)")]  # counted once


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


def test_artifact_registry_free_tier_is_once_per_billing_account():
    repos = [
        PlannedResource("gcp:artifactregistry/repository:Repository", n, {"location": "us-central1"}) for n in "ab"
    ]
    est = price_plan(plan(*repos), CAT, effective_assumptions(CAT, {"registry_storage_gb": 1}))
    assert totals(est)["monthly"] == pytest.approx((2 * 1 - 0.5) * 0.10)  # not 2 x (1 - 0.5) x 0.10


def test_droplet_costs_its_monthly_price_and_backups_default_to_daily():
    droplet = PlannedResource(DROPLET, "web", {"size": "s-1vcpu-2gb"})
    registry = PlannedResource(DOCR, "reg", {"subscriptionTierSlug": "basic"})
    est = price_plan(plan(droplet, registry, config={}), CAT)
    assert totals(est)["monthly"] == pytest.approx(12.0 + 5.0)
    backed = PlannedResource(DROPLET, "web", {"size": "s-1vcpu-2gb", "backups": True})
    assert totals(price_plan(plan(backed, config={}), CAT))["monthly"] == pytest.approx(12.0 * 1.3)
    weekly = PlannedResource(
        DROPLET, "web", {"size": "s-1vcpu-2gb", "backups": True, "backupPolicy": {"plan": "weekly"}}
    )
    assert totals(price_plan(plan(weekly, config={}), CAT))["monthly"] == pytest.approx(12.0 * 1.2)


def test_reserved_ip_is_free_assigned_and_five_dollars_unassigned():
    ip = PlannedResource("digitalocean:index/reservedIp:ReservedIp", "ip", {"region": "nyc3"})
    assign = PlannedResource("digitalocean:index/reservedIpAssignment:ReservedIpAssignment", "ipa", {})
    assert totals(price_plan(plan(ip, assign, config={}), CAT))["monthly"] == pytest.approx(0.0)
    assert totals(price_plan(plan(ip, config={}), CAT))["monthly"] == pytest.approx(5.0)


def test_registry_tier_capacity_against_the_assumed_images():
    starter = PlannedResource(DOCR, "reg", {"subscriptionTierSlug": "starter"})
    one_gb = price_plan(plan(starter, config={}), CAT, effective_assumptions(CAT, {"registry_storage_gb": 1}))
    (warning,) = one_gb.warnings
    assert "starter holds 0.49 GB" in warning and "pushes would fail" in warning and "basic tier ($5.00" in warning
    small = price_plan(plan(starter, config={}), CAT, effective_assumptions(CAT, {"registry_storage_gb": 0.4}))
    assert small.warnings == ()
    basic = PlannedResource(DOCR, "reg", {"subscriptionTierSlug": "basic"})
    six = price_plan(plan(basic, config={}), CAT, effective_assumptions(CAT, {"registry_storage_gb": 6}))
    assert totals(six)["monthly"] == pytest.approx(5.0 + 1 * 0.02) and six.warnings == ()
