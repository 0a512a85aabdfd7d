"""The capacity model: how much CPU a stack really has for serving, and whether its pods fit on its nodes.

- Sustained vCPUs: a shared-core E2 type bursts to 2 vCPUs but sustains a fraction (e2-small 0.5, e2-medium
  1.0; the catalogue item's `sustained_vcpus`, sourced); every other type sustains its vCPUs.
- GKE allocatable: what a node offers pods after GKE's reservations: the measured figure on the catalogue item
  when there is one (shared-core types, where GKE reserves more), else GKE's documented tiers
  (`capacity.gke_reservations`). A shared-core type without a measured figure is not checked.
- System pods: the kube-system pods GKE runs (`capacity.gke_system_pods`), per node and per cluster.
- Pods fit when replicas x pod requests + system pods <= allocatable x nodes (CPU and memory) and one pod fits
  beside a node's own system pods; the smallest node count that fits is the effective minimum.
- The HPA (Kubernetes' formula, https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details):
  desired replicas = ceil(current x utilisation / target), utilisation being the pods' CPU use over their CPU
  *request* (every container's, the sidecar's included), and nothing changes while utilisation / target is within
  the 0.1 tolerance. So n replicas hold a load of up to n x request x target x 1.1 vCPUs; past it the (n+1)th pod
  starts, on the smallest node count where n+1 pods fit. The last replica count that fits (the HPA's maximum, or
  fewer when the nodes run out) serves up to min(nodes x sustained vCPUs, replicas x the serving CPU limit).
- One headroom rule for every target (HEADROOM_RULE): a vCPU serves the capacity record's rate, which already is
  the highest load that held the latency objective through Caddy; requests/s = that rate x the step's vCPUs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infra.costs.catalogue import Catalogue, Item
from infra.costs.serving import CapacityStep, ServingCapacity
from infra.costs.stack import quantity  # the config's Kubernetes quantity rule, so requests parse the same way
from infra.tables import resource_types as types

DEPLOYMENT = types.K8S_DEPLOYMENT
HPA = types.K8S_HPA
MIB = 2**20
HPA_TOLERANCE = 0.1  # kube-controller-manager's --horizontal-pod-autoscaler-tolerance default
HEADROOM = 1.0
HEADROOM_RULE = (
    "every target serves up to the capacity record's rate (the highest load that held the latency objective) per "
    "vCPU that serves; an autoscaler's target decides when more is paid for, not what a vCPU serves"
)


def sustained_vcpus(item: Item) -> float:
    return float(item.extra.get("sustained_vcpus", item.extra.get("vcpus", 0)))


def _tiered(amount: float, tiers: list) -> float:
    """Sum of rate x slice over [[size, rate], ...]; a size of None takes the rest."""
    reserved, left = 0.0, amount
    for size, rate in tiers:
        part = left if size is None else min(left, size)
        reserved += part * rate
        left -= part
        if left <= 0:
            break
    return reserved


def gke_allocatable(item: Item, catalogue: Catalogue) -> tuple[float, float] | None:
    """(CPU millicores, memory MiB) a GKE node of this machine type offers pods, or None when unknown."""
    measured = item.extra.get("gke_allocatable")
    if measured:
        return float(measured["cpu_m"]), float(measured["memory_mib"])
    rules = catalogue.capacity.get("gke_reservations")
    if not rules or "sustained_vcpus" in item.extra or not item.extra.get("vcpus"):
        return None
    cores, mem_gib = float(item.extra["vcpus"]), float(item.extra["memory_gb"])
    cpu_m = (cores - _tiered(cores, rules["cpu_tiers"])) * 1000
    if mem_gib < 1:
        mem_mib = mem_gib * 1024 - rules["memory_under_1gib_mib"]
    else:
        mem_mib = (mem_gib - _tiered(mem_gib, rules["memory_tiers_gib"])) * 1024
    return round(cpu_m), round(mem_mib - rules["eviction_mib"])


def system_pods(catalogue: Catalogue, nodes: int) -> tuple[float, float]:
    """(CPU millicores, memory MiB) the kube-system pods request on a cluster of `nodes` nodes."""
    pods = catalogue.capacity.get("gke_system_pods") or {"per_node": [], "per_cluster": []}
    cpu = sum(p["cpu_m"] for p in pods["per_node"]) * nodes
    mem = sum(p["memory_mib"] for p in pods["per_node"]) * nodes
    for pod in pods["per_cluster"]:
        replicas = min(int(pod["replicas"]), nodes)
        cpu, mem = cpu + pod["cpu_m"] * replicas, mem + pod["memory_mib"] * replicas
    return cpu, mem


def per_node_system(catalogue: Catalogue) -> tuple[float, float]:
    pods = (catalogue.capacity.get("gke_system_pods") or {}).get("per_node", [])
    return sum(p["cpu_m"] for p in pods), sum(p["memory_mib"] for p in pods)


@dataclass(frozen=True)
class Workload:
    """The serving Deployment as the scheduler sees it: per-pod requests/limits (every container) and the HPA."""

    cpu_request_m: float
    memory_request_mib: float
    cpu_limit: float  # vCPUs the serving container (the pod's first) may use
    replicas: int
    max_replicas: int
    cpu_target: float  # HPA target utilisation as a fraction; 1.0 without an HPA
    surge: int = 0  # extra pods a rolling update starts before it stops old ones (maxSurge)


def _pod_containers(pod_spec: dict) -> list[dict]:
    """Containers that run for the pod's life: its containers plus native sidecars (restartPolicy Always)."""
    sidecars = [c for c in pod_spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    return list(pod_spec.get("containers") or []) + sidecars


def workload(plan) -> Workload | None:
    """The plan's one Deployment and its HPA, or None when the stack runs no Deployment."""
    deployments = [r for r in plan.resources if r.type == DEPLOYMENT]
    if len(deployments) != 1:
        return None
    spec = deployments[0].inputs.get("spec") or {}
    containers = _pod_containers(((spec.get("template") or {}).get("spec")) or {})
    cpu = mem = 0.0
    for container in containers:
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += quantity(str(requests.get("cpu", "0"))) * 1000
        mem += quantity(str(requests.get("memory", "0"))) / MIB
    serving = (containers[0].get("resources") or {}) if containers else {}
    limit = quantity(str((serving.get("limits") or {}).get("cpu") or (serving.get("requests") or {}).get("cpu") or "0"))
    replicas = int(spec.get("replicas") or 1)
    surge = _max_surge(spec.get("strategy") or {}, replicas)
    max_replicas, target = replicas, 1.0
    for hpa in (r for r in plan.resources if r.type == HPA):
        hpa_spec = hpa.inputs.get("spec") or {}
        replicas = int(hpa_spec.get("minReplicas") or replicas)
        max_replicas = int(hpa_spec.get("maxReplicas") or replicas)
        for metric in hpa_spec.get("metrics") or []:
            resource = metric.get("resource") or {}
            if resource.get("name") == "cpu" and (resource.get("target") or {}).get("averageUtilization"):
                target = float(resource["target"]["averageUtilization"]) / 100
    return Workload(cpu, mem, limit, replicas, max_replicas, target, surge)


def _max_surge(strategy: dict, replicas: int) -> int:
    """Pods a rollout adds: maxSurge as a count or a percentage (Kubernetes' default 25%, rounded up)."""
    if strategy.get("type") == "Recreate":
        return 0
    value = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(replicas * float(value[:-1]) / 100)
    return int(value)


def replicas_that_fit(alloc: tuple[float, float], catalogue: Catalogue, work: Workload, nodes: int) -> int:
    """How many pods of the workload (uncapped) the scheduler can place on `nodes` nodes beside the system pods."""
    node_cpu, node_mem = per_node_system(catalogue)
    if work.cpu_request_m > alloc[0] - node_cpu or work.memory_request_mib > alloc[1] - node_mem:
        return 0  # one pod does not fit beside a node's own system pods
    sys_cpu, sys_mem = system_pods(catalogue, nodes)
    room_cpu, room_mem = alloc[0] * nodes - sys_cpu, alloc[1] * nodes - sys_mem
    fits = [room_cpu / work.cpu_request_m if work.cpu_request_m else math.inf]
    fits.append(room_mem / work.memory_request_mib if work.memory_request_mib else math.inf)
    return max(0, math.floor(min(fits)))


@dataclass(frozen=True)
class NodeFit:
    """The pods-fit verdict for a node pool: the effective node range and what serves at each size."""

    effective_min: int | None  # None: the minimum replicas never fit, even at the maximum node count
    steps: tuple[CapacityStep, ...]  # per node count from the effective minimum: pods that fit, serving vCPUs
    note: str


def hpa_holds(work: Workload, replicas: int) -> float:
    """vCPUs of load `replicas` pods carry before the HPA adds one: replicas x request x target x (1 + tolerance)."""
    if work.cpu_target >= 1.0 and work.max_replicas == work.replicas:
        return math.inf  # no autoscaler: the replicas carry what their CPUs can
    return replicas * work.cpu_request_m / 1000 * work.cpu_target * (1 + HPA_TOLERANCE)


def hpa_steps(node_steps: list[CapacityStep], work: Workload, sustained: float) -> tuple[CapacityStep, ...]:
    """One step per replica count the HPA runs, on the fewest nodes where that many pods fit (smallest first)."""
    placed = []
    for replicas in range(work.replicas, work.max_replicas + 1):
        where = next((s for s in node_steps if s.room >= replicas), None)
        if where is None:
            break
        placed.append((replicas, where))
    steps = []
    for i, (replicas, where) in enumerate(placed):
        physical = min(where.units * sustained, replicas * work.cpu_limit)
        vcpus = physical if i == len(placed) - 1 else min(physical, hpa_holds(work, replicas))
        steps.append(CapacityStep(units=where.units, serving_vcpus=vcpus, replicas=replicas, room=where.room))
    return tuple(steps)


def gke_fit(item: Item, catalogue: Catalogue, work: Workload, lo: int, hi: int) -> NodeFit:
    """Where the workload's pods fit between `lo` and `hi` nodes, and the HPA's steps: replicas, nodes, vCPUs."""
    alloc = gke_allocatable(item, catalogue)
    sustained = sustained_vcpus(item)
    steps = []
    for nodes in range(max(lo, 1), hi + 1):
        room = replicas_that_fit(alloc, catalogue, work, nodes) if alloc else work.max_replicas
        fit = min(room, work.max_replicas)
        vcpus = min(nodes * sustained, fit * work.cpu_limit)
        steps.append(CapacityStep(units=nodes, replicas=fit, room=room, serving_vcpus=vcpus))
    if alloc is None:
        note = f"pods-fit not checked: no GKE allocatable figure for {item.name}"
        return NodeFit(lo, tuple(steps), note)
    fitting = [s.units for s in steps if s.replicas >= work.replicas]
    effective = fitting[0] if fitting else None
    need = (
        f"{work.replicas} x {work.cpu_request_m:g}m CPU + system pods {system_pods(catalogue, lo)[0]:g}m "
        f"vs {alloc[0]:g}m allocatable per {item.name}"
    )
    if effective is None:
        note = f"pods do not fit: {need}, even on {hi} node(s)"
    elif effective > lo:
        note = f"minimum raised from {lo} to {effective} nodes: {need} do not fit on {lo}"
    else:
        note = f"pods fit on {lo} node(s) ({need})"
    top = steps[-1].replicas if steps else 0
    if effective is not None and top < work.max_replicas:
        note += f"; at most {top} of the HPA's {work.max_replicas} replicas fit on {hi} node(s)"
    rollout = work.replicas + work.surge
    if effective is not None and work.surge and steps[effective - steps[0].units].room < rollout:
        during = next((s.units for s in steps if s.room >= rollout), None)
        where = f"{during} nodes while it lasts" if during else f"more than {hi} nodes"
        note += f"; a rollout (maxSurge {work.surge}) runs {rollout} pods: {where}"
    fitting = [s for s in steps if effective is not None and s.units >= effective]
    return NodeFit(effective, hpa_steps(fitting, work, sustained), note)


def serving(unit: str, item: Item, steps) -> ServingCapacity:
    """What a stack serves with: its capacity steps, at the one headroom rule every target shares."""
    return ServingCapacity(
        unit=unit,
        sustained_vcpus_each=sustained_vcpus(item),
        utilisation=HEADROOM,
        utilisation_from=HEADROOM_RULE,
        steps=tuple(steps),
    )
