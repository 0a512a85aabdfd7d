"""The deploy targets: one module each, one registry, and nothing else a new target needs (docs/deploy.md).

The registry (infra/targets/__init__.py) is the only place the set of targets is written down: no other module
of the program, the policy pack, the costs engine or staging lists target names or branches on one.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pathlib

import pulumi
import pytest

from infra.costs.catalogue import CATALOGUE_PATH
from infra.costs.pricing import PRICERS
from infra.targets import GCP_TARGETS, SERVING_TARGETS, TARGETS
from robojam_format.layout import REPO_ROOT

NAMES = set(TARGETS)
SKIPPED_DIRS = {"tests", "build", "node_modules", "__pycache__"}  # tests name targets to check them
# Keyed by staging's own scopes ("all", "caddy" and the step names), not a list of targets: what each step changes.
NOT_TARGET_LISTS = {"staging/adapt.py": ["line 14: a dict keyed by target names"]}


def sources() -> list[pathlib.Path]:
    """Every Python source of the repo but the tests (and virtual environments, hidden folders, build output)."""
    return [
        path
        for path in sorted(REPO_ROOT.rglob("*.py"))
        if not any(
            part.startswith(".") or part in SKIPPED_DIRS or "venv" in part
            for part in path.parts[len(REPO_ROOT.parts) : -1]
        )
    ]


def _target_names(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and n.value in NAMES}


def enumerations(tree: ast.AST) -> list[str]:
    """Where a module lists two or more target names, or compares something called *target* with a name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(_target_names(node)) >= 2:
            found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
        elif isinstance(node, ast.Dict) and len({getattr(k, "value", None) for k in node.keys} & NAMES) >= 2:
            found.append(f"line {node.lineno}: a dict keyed by target names")
        elif isinstance(node, ast.Compare) and "target" in ast.unparse(node.left) and _target_names(node):
            found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_the_set_of_targets_is_written_down_only_in_the_registry():
    offending = {}
    for path in sources():
        relative = path.relative_to(REPO_ROOT).as_posix()
        if relative.startswith("infra/targets/"):
            continue
        found = enumerations(ast.parse(path.read_text(), filename=relative))
        if found and found != NOT_TARGET_LISTS.get(relative):
            offending[relative] = found
    assert offending == {}


def test_each_target_name_is_spelt_only_in_its_own_module():
    """ "gpu-vm" (the one name no other concept shares) appears in its module only; the scan finds it there."""
    spelt = [p.relative_to(REPO_ROOT).as_posix() for p in sources() if '"gpu-vm"' in p.read_text()]
    assert spelt == ["infra/targets/gpu_vm.py"]


def test_the_scan_would_catch_a_hand_written_list_or_branch():
    assert enumerations(ast.parse('TARGETS = ("droplet", "gke")'))
    assert enumerations(ast.parse('if cfg.target == "gke":\n    pass'))
    assert enumerations(ast.parse('{"droplet": 1, "gpu-vm": 2}'))
    assert not enumerations(ast.parse('STACK = "gke"\nkind = ("droplet", size)'))


def test_the_registry_is_the_only_module_importing_every_target_module():
    importers = []
    for path in sources():
        tree = ast.parse(path.read_text())
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "infra.targets"
            for alias in node.names
        }
        if {"droplet", "gke", "gpu_vm"} <= imported:
            importers.append(path.relative_to(REPO_ROOT).as_posix())
    assert importers == ["infra/targets/__init__.py"]


def test_derived_groups_follow_the_registry():
    assert set(GCP_TARGETS) == {n for n, t in TARGETS.items() if t.cloud == "gcp"} and GCP_TARGETS
    assert set(SERVING_TARGETS) == {n for n, t in TARGETS.items() if t.serves} and SERVING_TARGETS
    assert all(t.cloud in ("gcp", "digitalocean") for t in TARGETS.values())


# --- docs/deploy.md's checklist: what a target needs, found for every registered target ---------------------

CATALOGUE_KINDS = {item["kind"] for item in json.loads(CATALOGUE_PATH.read_text())["items"]}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_each_target_has_its_module_component_pricer_catalogue_rows_and_staging_step(name):
    target = TARGETS[name]
    module = importlib.import_module(f"infra.targets.{name.replace('-', '_')}")
    assert module.TARGET is target, "a target module: infra/targets/NAME.py ending in TARGET"
    assert target.build.__module__ == module.__name__ and target.settings.__module__ == module.__name__
    assert target.components, "a component"
    for component in target.components:
        assert issubclass(component, pulumi.ComponentResource)
        assert component.__module__.startswith("infra.components."), component
    assert target.billed_type in PRICERS, f"a pricer: infra.costs prices {target.billed_type}"
    assert target.catalogue_kinds and set(target.catalogue_kinds) <= CATALOGUE_KINDS, "catalogue rows"
    assert target.staging_steps, "a staging step"
    for step in target.staging_steps:
        run = importlib.import_module(f"staging.step_{step}").run
        assert list(inspect.signature(run).parameters) == ["ctx"], step


def test_the_checklist_in_the_docs_names_exactly_what_the_test_above_checks():
    doc = (REPO_ROOT / "docs" / "deploy.md").read_text()
    items = [line.split("**")[1] for line in doc.splitlines() if line.startswith("- [ ] **")]
    assert items == ["a target module", "a component", "a pricer", "catalogue rows", "a staging step"]
    assert "and nothing else" in doc


def test_staging_runs_each_targets_steps_after_the_image_training_before_serving():
    from staging.cli import steps

    chosen = steps()
    trains = [s for t in TARGETS.values() if not t.serves for s in t.staging_steps]  # what the serving steps promote
    expected = ["image", *trains, *(s for t in TARGETS.values() if t.serves for s in t.staging_steps)]
    assert list(chosen) == expected
    assert all(chosen[s][1] == t.serves for t in TARGETS.values() for s in t.staging_steps)
