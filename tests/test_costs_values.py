"""Costs on typed values: pricers return values and read a frozen context; the stack's facts come from its settings."""

from __future__ import annotations

import ast
import dataclasses

import pytest

from infra.costs import capacity, gcp
from infra.costs.catalogue import load_catalogue
from infra.costs.context import PricingContext
from infra.costs.estimate import Priced, PriceLine
from infra.costs.pricing import PRICERS, effective_assumptions, price_plan
from infra.costs.serving import CapacityStep, ServingCapacity
from infra.costs.stack import ConfigError, StackFacts, stack_facts
from infra.mock_plan import SECRET_PLACEHOLDER, Plan, PlannedResource
from robojam_format.layout import REPO_ROOT

CAT = load_catalogue()
COSTS = REPO_ROOT / "infra" / "costs"
GKE_STACK = {"robojam:target": "gke", "gcp:project": "robojam-test", "gcp:zone": "us-central1-a"}
CLUSTER = PlannedResource(gcp.GKE_CLUSTER, "gke", {"removeDefaultNodePool": True, "initialNodeCount": 1})
POOL = PlannedResource(
    "gcp:container/nodePool:NodePool",
    "pool",
    {"autoscaling": {"minNodeCount": 1, "maxNodeCount": 3}, "nodeConfig": {"machineType": "e2-medium"}},
)
CONTAINER = {"name": "app", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1"}}}
DEPLOYMENT = PlannedResource(
    capacity.DEPLOYMENT, "app", {"spec": {"replicas": 2, "template": {"spec": {"containers": [CONTAINER]}}}}
)
HPA = PlannedResource(
    capacity.HPA,
    "hpa",
    {
        "spec": {
            "minReplicas": 2,
            "maxReplicas": 6,
            "metrics": [{"resource": {"name": "cpu", "target": {"averageUtilization": 70}}}],
        }
    },
)


def plan(*resources: PlannedResource, config: dict | None = None) -> Plan:
    return Plan(stack="t", config=GKE_STACK if config is None else config, resources=list(resources), outputs={})


def context(p: Plan) -> PricingContext:
    return PricingContext(CAT, p, effective_assumptions(CAT), stack=stack_facts(p))


# --- pricers return values ------------------------------------------------------------------------------


def test_every_pricer_returns_priced_values_and_pricing_twice_gives_the_same():
    services = [PlannedResource(gcp.SERVICE, f"lb{i}", {"spec": {"type": "LoadBalancer"}}) for i in range(2)]
    repos = [PlannedResource(gcp.REPOSITORY, f"repo{i}", {"location": "us-central1"}) for i in range(2)]
    droplet = PlannedResource("digitalocean:index/droplet:Droplet", "web", {"size": "s-1vcpu-1gb"})
    p = plan(CLUSTER, POOL, DEPLOYMENT, HPA, *services, *repos, droplet)
    ctx = context(p)
    for res in p.resources:
        pricer = PRICERS.get(res.type)
        if pricer is None:
            continue
        first = pricer(res, ctx)
        assert isinstance(first, Priced) and all(isinstance(x, PriceLine) for x in first.lines), res.type
        assert pricer(res, ctx) == first, res.type  # nothing was consumed: the GKE credit, the free GB, rule #1
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.train_hours = 3.0  # type: ignore[misc]


def test_allowances_go_to_resources_in_billing_order():
    clusters = [dataclasses.replace(CLUSTER, name=n) for n in ("b", "a")]
    ctx = context(plan(*clusters))
    credits = {
        res.name: [x.status for x in gcp.cluster_lines(res, ctx).lines if x.category != "usage"] for res in clusters
    }
    assert credits == {"a": ["priced", "credit"], "b": ["priced"]}  # one zonal cluster per account gets the credit
    repos = [PlannedResource(gcp.REPOSITORY, f"r{i}", {"location": "us-central1"}) for i in range(3)]
    small = effective_assumptions(CAT, {"registry_storage_gb": 0.2})
    p = plan(*repos)
    ctx = PricingContext(CAT, p, small, stack=stack_facts(p))
    billed = [gcp.registry_lines(res, ctx).lines[0].quantity for res in repos]
    assert billed == pytest.approx([0.0, 0.0, 0.1])  # the free 0.5 GB: 0.2 + 0.2 + 0.1 of the third's 0.2


def test_the_node_pool_returns_its_capacity_steps():
    priced = gcp.node_pool_lines(POOL, context(plan(CLUSTER, POOL, DEPLOYMENT, HPA)))
    serving = priced.serving
    assert (serving.unit, serving.utilisation, serving.sustained_vcpus_each) == ("node", 1.0, 1.0)  # one headroom
    # by hand: e2-medium offers 940m; the cited system pods take 364m a node plus 2 x 265m (kube-dns) + 87m (one of
    # each other cluster pod): 716m on 1 node, 1345m on 2, 1709m on 3; a pod asks 250m, so 2 fit on 2 nodes
    # ((1880 - 1345) / 250 = 2.14) and 4 on 3 ((2820 - 1709) / 250 = 4.44). The HPA (70 % of the request, 0.1
    # tolerance) keeps n pods up to n x 0.25 x 0.7 x 1.1 = n x 0.1925 vCPUs; 4 pods, the most that fit, serve what
    # 3 nodes sustain.
    assert serving.steps == (
        CapacityStep(units=2, serving_vcpus=pytest.approx(0.385), replicas=2, room=2),
        CapacityStep(units=3, serving_vcpus=pytest.approx(0.5775), replicas=3, room=4),
        CapacityStep(units=3, serving_vcpus=3.0, replicas=4, room=4),
    )
    assert (serving.min_units, serving.max_units) == (2, 3) and priced.warnings == ()


def test_a_droplet_has_one_capacity_step_without_pods_priced_at_the_stack_total():
    droplet = PlannedResource("digitalocean:index/droplet:Droplet", "web", {"size": "s-1vcpu-1gb"})
    est = price_plan(plan(droplet, config={}), CAT)
    (step,) = est.serving.steps
    assert (step.units, step.serving_vcpus, step.monthly) == (1, 1.0, 6.0)
    assert step.hourly == est.totals.hourly
    assert step.to_dict() == {"units": 1, "serving_vcpus": 1.0, "hourly": step.hourly, "monthly": 6.0}


def test_serving_capacity_prices_each_step_linearly_and_states_its_requests_per_second():
    steps = tuple(CapacityStep(units=n, serving_vcpus=float(n)) for n in (2, 3, 4))
    serving = ServingCapacity("node", 1.0, 0.5, "test", steps).priced((1.0, 3.0), (10.0, 30.0))
    assert [(s.hourly, s.monthly) for s in serving.steps] == [(1.0, 10.0), (2.0, 20.0), (3.0, 30.0)]
    assert serving.requests_per_second(serving.steps[1], 20.0) == 30.0  # 20 req/s per vCPU x 3 vCPUs x 50 %
    assert serving.to_dict()["steps"][1] == {"units": 3, "serving_vcpus": 3.0, "hourly": 2.0, "monthly": 20.0}


def test_kubernetes_quantities():
    assert capacity.quantity("250m") == 0.25 and capacity.quantity("1") == 1.0 and capacity.quantity("1.5") == 1.5
    assert capacity.quantity("256Mi") == 256 * 2**20 and capacity.quantity("1G") == 1e9


# --- the stack's facts come from its parsed settings -------------------------------------------------------


def test_target_and_region_come_from_the_parsed_settings():
    eu = {**GKE_STACK, "gcp:zone": "europe-west1-b"}
    est = price_plan(plan(CLUSTER, config=eu), CAT)
    fee = est.lines[0]
    assert est.target == "gke" and fee.component == "cluster management fee (europe-west1-b)"
    assert "us-central1 price (catalogue has none for europe-west1)" in fee.note
    # the settings apply the config's defaults and rules: the default zone, a region that holds the zone
    assert stack_facts(plan(config={"robojam:target": "gke", "gcp:project": "robojam-test"})) == StackFacts(
        "gke", "us-central1", "us-central1-a"
    )
    assert stack_facts(plan(config={**eu, "gcp:region": "europe-west1"})).gcp_region == "europe-west1"


def test_a_config_the_program_refuses_is_refused_by_the_costs_too():
    with pytest.raises(ConfigError, match="gcp:zone"):
        price_plan(plan(CLUSTER, config={**GKE_STACK, "gcp:zone": "europe-west1"}), CAT)  # a region, not a zone
    with pytest.raises(ConfigError, match="is not in gcp:region"):
        stack_facts(plan(config={**GKE_STACK, "gcp:region": "europe-west1"}))


def test_a_secret_in_the_plan_config_is_parsed_as_a_secret():
    droplet = {
        "robojam:target": "droplet",
        "robojam:sshKeys": ["3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"],
        "robojam:sshCidrs": ["203.0.113.7/32"],
    }
    assert stack_facts(plan(config={**droplet, "digitalocean:token": SECRET_PLACEHOLDER})) == StackFacts("droplet")
    with pytest.raises(ConfigError, match="--secret"):
        stack_facts(plan(config={**droplet, "digitalocean:token": "dop_v1_plain"}))


def test_a_bare_plan_has_no_stack_facts():
    assert stack_facts(plan(config={})) == StackFacts() and StackFacts().gcp_region is None
    assert price_plan(plan(CLUSTER, config={}), CAT).target == ""


# --- what the costs import ---------------------------------------------------------------------------------


def _modules() -> dict[str, ast.Module]:
    return {path.name: ast.parse(path.read_text()) for path in sorted(COSTS.glob("*.py"))}


def _imports(tree: ast.Module) -> set[str]:
    """Every module a file imports, `from a import b` counted as both a and a.b."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_only_the_access_point_module_reads_infra_config():
    config_modules = {"infra.config", "infra.stack_config", "infra.targets"}
    readers = {name for name, tree in _modules().items() if config_modules & _imports(tree)}
    assert readers == {"stack.py"}


def test_the_costs_use_no_private_names_of_other_modules():
    found = []
    for name, tree in _modules().items():
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                found += [f"{name}: from {node.module} import {a.name}" for a in node.names if a.name.startswith("_")]
                modules |= {a.asname or a.name for a in node.names}
            elif isinstance(node, ast.Import):
                modules |= {(a.asname or a.name).split(".")[0] for a in node.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
                if node.attr.startswith("_") and not node.attr.startswith("__"):
                    found.append(f"{name}: {node.value.id}.{node.attr}")
    assert found == []
