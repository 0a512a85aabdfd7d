"""The shared mock runner: isolated runs, faithful config, and the same entry point `pulumi up` runs."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pulumi
import pytest
from pulumi.runtime import config as runtime_config
from pulumi.runtime import settings as runtime_settings

from infra import mock_plan
from infra.config import ConfigError
from infra.mock_plan import (
    SECRET_PLACEHOLDER,
    load_stack_config,
    plan_stack,
    stack_files,
    stack_name,
)
from robojam_format.layout import REPO_ROOT


def test_stack_files_are_every_pulumi_stack_yaml_sorted():
    files = stack_files()
    assert files == sorted(REPO_ROOT.glob("Pulumi.*.yaml"))
    assert [stack_name(f) for f in files] == sorted(stack_name(f) for f in files)
    assert REPO_ROOT / "Pulumi.yaml" not in files


def test_load_stack_config_masks_secure_values(tmp_path):
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config:\n  robojam:target: droplet\n  digitalocean:token:\n    secure: v1:abc==\n")
    assert load_stack_config(path) == {"robojam:target": "droplet", "digitalocean:token": SECRET_PLACEHOLDER}


def test_several_stacks_in_one_process_do_not_leak_into_each_other():
    first = plan_stack("gke")
    droplet = plan_stack("dev")
    again = plan_stack("gke")
    assert "url" in droplet.outputs and "cluster" not in droplet.outputs
    assert not [r for r in droplet.resources if r.type.startswith(("gcp:", "kubernetes:"))]
    assert sorted((r.type, r.name) for r in first.resources) == sorted((r.type, r.name) for r in again.resources)
    assert first.outputs == again.outputs


def test_runtime_state_is_reset_after_a_plan_and_after_a_config_error():
    plan_stack("dev")
    with pytest.raises(ConfigError):
        plan_stack("dev", {"robojam:target": "nope"})
    assert runtime_settings.get_root_resource() is None
    assert runtime_config.get_config("robojam:target") is None
    assert not pulumi.runtime.is_dry_run()


def test_overrides_patch_and_delete_keys_without_touching_the_file():
    before = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    plan = plan_stack("dev", {"robojam:size": "s-2vcpu-2gb", "robojam:region": None})
    assert plan.config["robojam:size"] == "s-2vcpu-2gb" and "robojam:region" not in plan.config
    assert plan.one("digitalocean:index/droplet:Droplet").inputs["size"] == "s-2vcpu-2gb"
    assert (REPO_ROOT / "Pulumi.dev.yaml").read_text() == before


def test_a_stack_can_be_named_by_path_and_a_missing_one_is_a_clear_error(tmp_path):
    assert plan_stack(REPO_ROOT / "Pulumi.dev.yaml").stack == "dev"
    with pytest.raises(FileNotFoundError, match="no stack file"):
        plan_stack("no-such-stack")


def test_plan_runs_the_pulumi_entry_point(monkeypatch):
    """plan_stack executes infra/__main__.py: a program not wired there cannot pass by accident."""
    calls = []
    import infra.program

    monkeypatch.setattr(infra.program, "main", lambda: calls.append("main"))
    plan = plan_stack("dev")
    assert calls == ["main"] and plan.resources == []


def test_the_callers_event_loop_is_left_alone():
    """Callers (pytest, the costs CLI) need no event loop of their own, and keep theirs untouched."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        plan_stack("dev")
        assert asyncio.get_event_loop_policy().get_event_loop() is loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_numbers_come_back_as_ints_where_integral():
    pool = plan_stack("gke").one("gcp:container/nodePool:NodePool").inputs
    assert isinstance(pool["autoscaling"]["minNodeCount"], int)


def test_dependencies_and_replace_on_changes_are_recorded():
    plan = plan_stack("train")
    vm = plan.one("gcp:compute/instance:Instance")
    assert "train-bucket-access" in vm.dependencies and "train-subnet" in vm.dependencies  # explicit and implicit
    assert vm.replace_on_changes == ("metadataStartupScript",)
    assert plan.one("gcp:compute/network:Network").replace_on_changes == ()


def test_one_and_of_type_helpers():
    plan = plan_stack("dev")
    assert plan.one("digitalocean:index/droplet:Droplet").type == "digitalocean:index/droplet:Droplet"
    with pytest.raises(LookupError):
        plan.one("gcp:compute/instance:Instance")
    assert mock_plan.PlannedResource("t", "n", {}).secret_paths == ()


def test_importing_the_infra_package_creates_nothing():
    """Only `pulumi up` (infra/__main__.py) builds resources: importing every module, with mocks listening,
    registers nothing. A fresh interpreter, so nothing is imported already."""
    code = """
import asyncio, pulumi
from infra.mock_plan import RecordingMocks
mocks = RecordingMocks()
asyncio.set_event_loop(asyncio.new_event_loop())
pulumi.runtime.set_mocks(mocks, project="robojam", stack="dev")
import infra, infra.config, infra.stack_config, infra.program, infra.render, infra.targets
import infra.components.droplet, infra.components.gke_cluster, infra.components.gke_workload
import infra.components.gke_pod, infra.components.gpu_vm, infra.components.image
import infra.components.api_services, infra.components.proxy, infra.tables.gpus, infra.tables.gcp_apis
asyncio.get_event_loop().run_until_complete(asyncio.sleep(0.2))
print(len(mocks.resources) + len(mocks.components))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert result.returncode == 0 and result.stdout == "0\n", result.stdout + result.stderr
