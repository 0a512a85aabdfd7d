"""What changing one config key does to a running stack: nothing, an in-place update, a new container, a replacement.

Each key has a sample change (`SAMPLES`: the stack, the config before, the config after). Both configs are planned
under the mocks (infra.mock_plan) and every resource's inputs compared; each changed input is looked up in
infra/tables/force_new.py (the providers' ForceNew facts), so the verdict follows the program, not a hand-kept
list. `python -m infra.docs` writes `change_table()` into docs/deploy.md; tests/test_infra_changes.py checks it.
"""

from __future__ import annotations

import contextlib
import hashlib
import pathlib
import shutil
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.mock_plan import Plan, SecretValue, config_strings, plan_stack
from infra.tables import force_new
from infra.tables import resource_types as types
from robojam_format.layout import SHIPPED_WEIGHTS

NONE, IN_PLACE, ROLLOUT, REPLACES = "no resource change", "updates in place", "rolls out a new container", "replaces"
DOMAIN = {"robojam:domain": "jam.example.org"}
# robojam:weights' sample: a copy of the shipped artifact, present in model/weights/ only while it is planned.
SAMPLE_WEIGHTS = SHIPPED_WEIGHTS.with_name("robojam-retrained.npz")
# key -> (stack, config before, config after); None in the "after" config deletes the key.
SAMPLES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "robojam:target": ("dev", {}, {}),  # another target is another stack: planned as no change, shown as replaced
    "robojam:image": ("dev", {}, {"robojam:image": "ghcr.io/example/robojam:2.0"}),
    "robojam:weights": ("dev", {}, {"robojam:weights": f"model/weights/{SAMPLE_WEIGHTS.name}"}),
    "robojam:sshCidrs": ("dev", {}, {"robojam:sshCidrs": ["198.51.100.7/32"]}),
    "digitalocean:token": ("dev", {}, {"digitalocean:token": SecretValue("dop_v1_another")}),
    "robojam:region": ("dev", {}, {"robojam:region": "ams3"}),
    "robojam:size": ("dev", {}, {"robojam:size": "s-1vcpu-2gb"}),
    "robojam:sshKeys": ("dev", {}, {"robojam:sshKeys": ["12:34:56:78:9a:bc:de:f0:12:34:56:78:9a:bc:de:f0"]}),
    "robojam:reservedIp": ("dev", {}, {"robojam:reservedIp": True}),
    "robojam:domain": ("dev", {"robojam:reservedIp": True}, {"robojam:reservedIp": True, **DOMAIN}),
    "robojam:acmeEmail": ("dev", DOMAIN, {**DOMAIN, "robojam:acmeEmail": "ops@example.org"}),
    "robojam:registryName": ("dev", {}, {"robojam:registryName": "robojam-another"}),
    "robojam:registryTier": ("dev", {}, {"robojam:registryTier": "professional"}),
    "robojam:createRegistry": (
        "dev",
        {"robojam:registryName": "robojam-ours"},
        {"robojam:registryName": "robojam-ours", "robojam:createRegistry": False},
    ),
    "gcp:project": ("gke", {}, {"gcp:project": "robojam-another"}),
    "gcp:zone": ("gke", {}, {"gcp:zone": "us-central1-b"}),
    "gcp:region": ("gke", {}, {"gcp:region": "us-central1"}),  # it must hold the zone: only the zone's region
    "robojam:nodeMachineType": ("gke", {}, {"robojam:nodeMachineType": "e2-standard-2"}),
    "robojam:minNodes": ("gke", {}, {"robojam:minNodes": 2}),
    "robojam:maxNodes": ("gke", {}, {"robojam:maxNodes": 5}),
    "robojam:replicas": ("gke", {}, {"robojam:replicas": 3}),
    "robojam:maxReplicas": ("gke", {}, {"robojam:maxReplicas": 8}),
    "robojam:cpuTargetPercent": ("gke", {}, {"robojam:cpuTargetPercent": 60}),
    "robojam:cpuRequest": ("gke", {}, {"robojam:cpuRequest": "500m"}),
    "robojam:cpuLimit": ("gke", {}, {"robojam:cpuLimit": "2"}),
    "robojam:memoryRequest": ("gke", {}, {"robojam:memoryRequest": "384Mi"}),
    "robojam:memoryLimit": ("gke", {}, {"robojam:memoryLimit": "768Mi"}),
    "robojam:controlPlaneCidrs": ("gke", {}, {"robojam:controlPlaneCidrs": ["198.51.100.0/24"]}),
    "robojam:machineType": ("train", {}, {"robojam:machineType": "n1-standard-8"}),
    "robojam:gpuType": ("train", {}, {"robojam:gpuType": "nvidia-tesla-p4"}),
    "robojam:gpuCount": ("train", {}, {"robojam:gpuCount": 2}),
    "robojam:imageFamily": ("train", {}, {"robojam:imageFamily": "common-cu124-ubuntu-2204-nvidia-550"}),
    "robojam:bootDiskGb": ("train", {}, {"robojam:bootDiskGb": 150}),
    "robojam:spot": ("train", {}, {"robojam:spot": True}),
    "robojam:maxRunHours": ("train", {}, {"robojam:maxRunHours": 8}),
    "robojam:maxRestarts": ("train", {}, {"robojam:maxRestarts": 5}),
    "robojam:maxTotalHours": ("train", {}, {"robojam:maxTotalHours": 12}),
    "robojam:terminationAction": ("train", {}, {"robojam:terminationAction": "DELETE"}),
    "robojam:corpusPath": ("train", {}, {"robojam:corpusPath": "model/weights/robojam.npz"}),
    "robojam:runName": ("train", {}, {"robojam:runName": "gpu-another"}),
    "robojam:epochs": ("train", {}, {"robojam:epochs": 50}),
    "robojam:interactive": ("train", {}, {"robojam:interactive": True}),
}
CHANGES_OTHER_STACK = "a different program: `pulumi destroy`, then `up` with the new target (or a new stack)"


@dataclass(frozen=True)
class Effect:
    """What one config change does: its class and the resources (by logical name) behind it."""

    kind: str  # NONE, IN_PLACE, ROLLOUT or REPLACES
    replaced: tuple[str, ...] = ()  # "name (Type)" of each resource a ForceNew input replaces
    updated: tuple[str, ...] = ()  # "name: input, ..." of each resource updated in place
    created: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()


def _comparable(value: Any) -> Any:
    """Assets as Pulumi compares them: by content, not by the path they were read from."""
    if isinstance(value, pulumi.FileAsset):
        return "sha256:" + hashlib.sha256(pathlib.Path(value.path).read_bytes()).hexdigest()
    if isinstance(value, pulumi.StringAsset):
        return "sha256:" + hashlib.sha256(value.text.encode()).hexdigest()
    if isinstance(value, pulumi.AssetArchive):
        return {name: _comparable(asset) for name, asset in sorted(value.assets.items())}
    return value


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    """Dotted input paths -> values; lists are leaves (a provider compares them whole)."""
    value = _comparable(value)
    if isinstance(value, dict) and value:
        found: dict[str, Any] = {}
        for key, item in value.items():
            found.update(leaves(item, f"{path}.{key}" if path else key))
        return found
    return {path: value}


def changed_inputs(before: dict, after: dict) -> list[str]:
    """The dotted input paths whose values differ."""
    old, new = leaves(before), leaves(after)
    return sorted(path for path in old.keys() | new.keys() if old.get(path) != new.get(path))


def _short(type_token: str) -> str:
    return type_token.rsplit(":", 1)[-1]


def classify(before: Plan, after: Plan) -> Effect:
    """Compare two plans of one stack resource by resource (by logical name) and class the difference."""
    old = {r.name: r for r in before.resources}
    new = {r.name: r for r in after.resources}
    replaced, updated, rollout = [], [], False
    for name in sorted(old.keys() & new.keys()):
        resource = new[name]
        paths = [
            p
            for p in changed_inputs(old[name].inputs, resource.inputs)
            if not any(p == i or p.startswith(f"{i}.") for i in resource.ignore_changes)
        ]
        if not paths:
            continue
        forcing = [p for p in paths if force_new.replaces(resource.type, p, resource.replace_on_changes)]
        if resource.type == types.REMOTE_COMMAND:
            rollout = rollout or old[name].inputs["triggers"][0] != resource.inputs["triggers"][0]
            updated.append(f"{name}: the deploy step reruns")
        elif resource.type == types.LOCAL_COMMAND:  # the registry's garbage collection, after each push
            updated.append(f"{name}: the registry's garbage collection reruns")
        elif resource.type == types.K8S_DEPLOYMENT and any(p.startswith("spec.template") for p in paths):
            rollout = True
            updated.append(f"{name}: {', '.join(paths)}")
        elif forcing:
            replaced.append(f"{name} ({_short(resource.type)}: {', '.join(forcing)})")
        else:
            updated.append(f"{name}: {', '.join(paths)}")
    created = tuple(f"{n} ({_short(new[n].type)})" for n in sorted(new.keys() - old.keys()))
    deleted = tuple(f"{n} ({_short(old[n].type)})" for n in sorted(old.keys() - new.keys()))
    if replaced:
        kind = REPLACES
    elif rollout:
        kind = ROLLOUT
    elif updated or created or deleted:
        kind = IN_PLACE
    else:
        kind = NONE
    return Effect(kind, tuple(replaced), tuple(updated), created, deleted)


def effect_of(key: str) -> Effect:
    """Plan a key's sample change and class it."""
    stack, base, changed = SAMPLES[key]
    with _sample_weights() if key == "robojam:weights" else contextlib.nullcontext():
        return classify(plan_stack(stack, base), plan_stack(stack, changed))


@contextlib.contextmanager
def _sample_weights():
    """SAMPLE_WEIGHTS for the duration of a plan (robojam:weights must name an artifact in model/weights/)."""
    made = not SAMPLE_WEIGHTS.exists()
    if made:
        shutil.copyfile(SHIPPED_WEIGHTS, SAMPLE_WEIGHTS)
    try:
        yield
    finally:
        if made:
            SAMPLE_WEIGHTS.unlink(missing_ok=True)


def _downtime(effect: Effect) -> str:
    costs = {force_new.DOWNTIME[t] for r in effect.replaced for t in force_new.DOWNTIME if f"({_short(t)}:" in r}
    return "; ".join(sorted(costs))


def describe(key: str, effect: Effect) -> str:
    """One table cell: the class, and what it touches."""
    if key == "robojam:target":
        return f"replaces everything: {CHANGES_OTHER_STACK}"
    parts = []
    if effect.replaced:
        parts.append("replaces " + "; ".join(effect.replaced) + f". Costs: {_downtime(effect)}")
    if effect.updated:
        parts.append(("in place: " if effect.replaced else "") + "; ".join(effect.updated))
    if effect.created:
        parts.append("creates " + ", ".join(effect.created))
    if effect.deleted:
        parts.append("deletes " + ", ".join(effect.deleted))
    detail = ". ".join(parts)
    head = "" if effect.kind == REPLACES else effect.kind
    return (f"{head}: {detail}" if head and detail else head or detail).replace("|", "\\|")


def all_effects() -> dict[str, Effect]:
    """Every key's sample change, planned and classed."""
    return {key: effect_of(key) for key in SAMPLES}


def change_table(effects: dict[str, Effect] | None = None) -> str:
    """The docs table: one row per key, from planning its sample change (or the given effects)."""
    from infra.stack_config import KEYS, targets_reading

    effects = effects or all_effects()
    rows = ["| key | targets | sample change (stack) | what the next `pulumi up` does |", "| --- | --- | --- | --- |"]
    for key in KEYS:
        stack, _, changed = SAMPLES[key.name]
        value = changed.get(key.name)
        if value is None:
            shown = "another target"
        elif isinstance(value, SecretValue):
            shown = f"a new secret ({stack})"
        else:
            shown = f"`{config_strings({key.name: value})[key.name]}` ({stack})"
        rows.append(
            f"| `{key.name}` | {', '.join(targets_reading(key))} | {shown} | {describe(key.name, effects[key.name])} |"
        )
    return "\n".join(rows)
