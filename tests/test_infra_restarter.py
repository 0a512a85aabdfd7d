"""Issue 18 item 2: the training VM resumes and finishes by itself.

The restarter under mocks (its resources, least-privilege IAM and caps in every train variant), its shell script
run against the gcloud stand-in (which stops are restarted, which never are), the startup script's bucket state,
and plan stability: edits to what training does not read leave the plan unchanged; a model edit changes it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from infra.components.gpu_vm import source_archive
from infra.components.restarter import PERMISSIONS, SCHEDULE
from infra.config import ConfigError
from infra.mock_plan import Plan, plan_stack
from infra.render import TEMPLATE_DIR
from infra.tables import resource_types as types
from robojam_format.layout import REPO_ROOT

VARIANTS = [
    {},
    {"robojam:spot": True, "robojam:maxRestarts": 7, "robojam:maxTotalHours": 12},
    {"robojam:interactive": True, "robojam:maxRestarts": 0},
    {"robojam:gpuType": "nvidia-l4", "robojam:machineType": "g2-standard-24", "robojam:gpuCount": 2},
]
STANDINS = REPO_ROOT / "tests" / "standins"
RESTARTER = TEMPLATE_DIR / "robojam-restarter.sh"


@pytest.fixture(scope="module")
def plans() -> list[Plan]:
    return [plan_stack("train", overrides) for overrides in VARIANTS]


def env_of(plan: Plan) -> dict[str, str]:
    container = plan.one(types.GCP_RUN_JOB).inputs["template"]["template"]["containers"][0]
    return {e["name"]: e["value"] for e in container["envs"]}


def member(plan: Plan, name: str) -> str:
    (account,) = [a for a in plan.of_type(types.GCP_SERVICE_ACCOUNT) if a.name == name]
    return f"serviceAccount:{account.inputs['accountId']}@project.iam.gserviceaccount.com"


def test_every_train_variant_has_the_restarter_with_its_caps(plans):
    for overrides, plan in zip(VARIANTS, plans, strict=True):
        vm = plan.one(types.GCP_INSTANCE).inputs
        job = plan.one(types.GCP_RUN_JOB).inputs
        env = env_of(plan)
        assert env["INSTANCE"] == vm["name"] and env["ZONE"] == vm["zone"]
        assert env["MAX_RESTARTS"] == str(overrides.get("robojam:maxRestarts", 3))
        assert env["MAX_TOTAL_SECONDS"] == str(int(overrides.get("robojam:maxTotalHours", 24) * 3600))
        bucket = plan.one(types.GCP_BUCKET).inputs["name"]
        assert env["STATUS_URI"].startswith(f"gs://{bucket}/status/{plan.config.get('robojam:runName', 'gpu')}-")
        assert 'STATUS="gs://$BUCKET/status/$RUN_ID"' in vm["metadataStartupScript"]
        assert f"RUN_ID={env['STATUS_URI'].rsplit('/', 1)[1]}\n" in vm["metadataStartupScript"]
        container = job["template"]["template"]["containers"][0]
        assert container["args"] == [RESTARTER.read_text()] and container["commands"] == ["bash", "-c"]
        assert job["template"]["template"]["maxRetries"] == 0
        schedule = plan.one(types.GCP_SCHEDULER_JOB).inputs
        assert schedule["schedule"] == SCHEDULE
        assert schedule["httpTarget"]["uri"].endswith(f"/locations/{job['location']}/jobs/{job['name']}:run")
        assert schedule["httpTarget"]["httpMethod"] == "POST"


def test_the_restarter_may_only_start_its_vm_and_touch_the_run_status(plans):
    for plan in plans:
        runner, caller = member(plan, "train-restarter-sa"), member(plan, "train-restarter-caller")
        role = plan.one(types.GCP_CUSTOM_ROLE).inputs
        assert role["permissions"] == PERMISSIONS == ["compute.instances.get", "compute.instances.start"]
        grant = plan.one(types.GCP_INSTANCE_IAM_MEMBER).inputs
        assert grant["instanceName"] == plan.one(types.GCP_INSTANCE).inputs["name"]
        assert grant["role"].endswith(f"/roles/{role['roleId']}") and grant["member"] == runner
        job = plan.one(types.GCP_RUN_JOB).inputs
        assert job["template"]["template"]["serviceAccount"] == runner.split(":", 1)[1]
        (status,) = [b.inputs for b in plan.of_type(types.GCP_BUCKET_IAM_MEMBER) if b.inputs["member"] == runner]
        bucket = plan.one(types.GCP_BUCKET).inputs["name"]
        assert status["condition"]["expression"] == (
            f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/status/")'
        )
        invoker = plan.one(types.GCP_RUN_JOB_IAM_MEMBER).inputs
        assert (invoker["role"], invoker["member"], invoker["name"]) == ("roles/run.invoker", caller, job["name"])
        assert (
            plan.one(types.GCP_SCHEDULER_JOB).inputs["httpTarget"]["oauthToken"]["serviceAccountEmail"]
            == (caller.split(":", 1)[1])
        )
        granted = [r for r in plan.resources if r.inputs.get("member") in (runner, caller)]
        assert sorted(r.type for r in granted) == sorted(
            [types.GCP_INSTANCE_IAM_MEMBER, types.GCP_BUCKET_IAM_MEMBER, types.GCP_RUN_JOB_IAM_MEMBER]
        )


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"robojam:maxRestarts": -1}, "robojam:maxRestarts must be at least 0, got -1."),
        ({"robojam:maxRestarts": 51}, "robojam:maxRestarts must be at most 50, got 51."),
        ({"robojam:maxTotalHours": 200}, "robojam:maxTotalHours must be above 0 and at most 168, got 200."),
        ({"robojam:maxTotalHours": 2}, "robojam:maxRunHours (6.0) must not exceed robojam:maxTotalHours (2.0)."),
    ],
)
def test_the_caps_are_validated(overrides, message):
    with pytest.raises(ConfigError) as caught:
        plan_stack("train", overrides)
    assert str(caught.value) == message


# --- the restarter's script against the gcloud stand-in ---------------------------------------------------


def restarter(tmp_path: Path, vm: str, status: dict[str, str], max_restarts: int = 3, total: int = 3600):
    """Run the script once; returns (its output, the VM's state after, the status objects after)."""
    buckets, folder = tmp_path / "buckets", tmp_path / "buckets" / "b" / "status" / "run-1"
    shutil.rmtree(tmp_path, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, text in status.items():
        (folder / name).write_text(text + "\n")
    (tmp_path / "instances").mkdir()
    (tmp_path / "instances" / "robojam-train").write_text(vm + "\n")
    env = {
        **os.environ,
        "PATH": f"{STANDINS}{os.pathsep}{os.environ['PATH']}",
        "STAGING_CALLS": str(tmp_path / "calls.log"),
        "STAGING_BUCKETS": str(buckets),
        "STAGING_INSTANCES": str(tmp_path / "instances"),
        "STAGING_PYTHON": sys.executable,
        "INSTANCE": "robojam-train",
        "ZONE": "us-central1-a",
        "PROJECT": "p",
        "STATUS_URI": "gs://b/status/run-1",
        "MAX_RESTARTS": str(max_restarts),
        "MAX_TOTAL_SECONDS": str(total),
    }
    done = subprocess.run(["bash", str(RESTARTER)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    after = {p.name: p.read_text().strip() for p in folder.iterdir()}
    return done.stdout, (tmp_path / "instances" / "robojam-train").read_text().strip(), after


def test_a_stopped_unfinished_run_is_started_again_and_counted(tmp_path):
    started = str(int(time.time()) - 60)
    out, vm, status = restarter(tmp_path, "TERMINATED", {"started": started})
    assert vm == "RUNNING" and status["restarts"] == "1"
    assert "restart 1 of 3" in out
    out, vm, status = restarter(tmp_path, "TERMINATED", {"started": started, "restarts": "2"})
    assert vm == "RUNNING" and status["restarts"] == "3"


@pytest.mark.parametrize(
    "vm, status, why",
    [
        ("RUNNING", {"started": "NOW"}, "is RUNNING: nothing to do"),
        ("TERMINATED", {}, "never booted"),
        ("TERMINATED", {"started": "NOW", "done": "1"}, "marked done"),
        ("TERMINATED", {"started": "NOW", "failed": "exit status 1"}, "marked failed"),
        ("TERMINATED", {"started": "NOW", "hold": ""}, "marked hold"),
        ("TERMINATED", {"started": "NOW", "restarts": "3"}, "restart cap reached (3 of 3)"),
        ("TERMINATED", {"started": "OLD"}, "run time cap reached"),
    ],
)
def test_a_finished_failed_held_or_capped_run_is_never_started(tmp_path, vm, status, why):
    now = int(time.time())
    status = {k: {"NOW": str(now - 60), "OLD": str(now - 7200)}.get(v, v) for k, v in status.items()}
    out, after, left = restarter(tmp_path, vm, status)
    assert why in out
    assert after == vm and "restarts" not in set(left) - set(status)
    assert "instances start" not in (tmp_path / "calls.log").read_text()


# --- the startup script keeps the run in the bucket -------------------------------------------------------


def test_the_startup_script_keeps_the_run_and_its_markers_in_the_bucket(plans):
    script = plans[0].one(types.GCP_INSTANCE).inputs["metadataStartupScript"]
    assert 'retry gcloud storage cp "gs://$BUCKET/$SOURCE_OBJECT" source.zip' in script  # the first bucket read
    assert "for attempt in $(seq 1 30)" in script
    assert 'ROBOJAM_AFTER_EPOCH="$WORKDIR/push-run.sh" timeout "$remaining"' in script
    assert 'gcloud storage rsync --recursive "$RUN_URI" "runs/$RUN_NAME"' in script  # restored at boot
    assert 'put_status "done"' in script and "put_status failed" in script
    assert "/var/lib/robojam" not in script  # no marker on the disk: a replaced disk cannot retrain
    assert '"$METADATA/instance/preempted"' in script
    push = script[script.index("<<'PUSH'") : script.index("\nPUSH\n")]
    first, pointer, second = (
        push.index(s) for s in ("--exclude 'backup/LATEST$'", 'backup/LATEST" "$RUN_URI', "--delete")
    )
    assert first < pointer < second  # the pointer only after the folder it names; old epochs deleted last


# --- plan stability ---------------------------------------------------------------------------------------

PLAN_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, pathlib, sys
    import pulumi
    from infra.mock_plan import plan_stack

    def plain(value):
        if isinstance(value, pulumi.AssetArchive):
            return {k: plain(v) for k, v in sorted(value.assets.items())}
        if isinstance(value, pulumi.StringAsset):
            return hashlib.sha256(value.text.encode()).hexdigest()
        if isinstance(value, pulumi.FileAsset):
            return hashlib.sha256(pathlib.Path(value.path).read_bytes()).hexdigest()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    plan = plan_stack("train", {"robojam:corpusPath": sys.argv[1]})
    print(json.dumps([[r.type, r.name, plain(r.inputs)] for r in plan.resources], sort_keys=True))
    """
)
COPY_IGNORED = shutil.ignore_patterns(".git", ".venv*", "venv", ".tools", "build", "runs", "__pycache__", "*.pyc")


def plan_in(root: Path, corpus: Path) -> list:
    done = subprocess.run(
        [sys.executable, "-c", PLAN_SCRIPT, str(corpus)], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_plan_changes_only_when_what_training_reads_changes(tmp_path):
    shipped_corpus = (REPO_ROOT / plan_stack("train").config["robojam:corpusPath"]).resolve()
    corpus = tmp_path / "corpus" / shipped_corpus.name  # a copy, edited in place below
    corpus.parent.mkdir()
    shutil.copyfile(shipped_corpus, corpus)
    copy = tmp_path / "repo"
    shutil.copytree(REPO_ROOT, copy, ignore=COPY_IGNORED, symlinks=True)
    before = plan_in(copy, corpus)
    for edited in ("README.md", "docs/deploy.md", "tests/test_infra_restarter.py", "infra/costs/training.py",
                   "staging/step_training.py", "model/MODEL_CARD.md", "DEVELOPERS.md"):  # fmt: skip
        with (copy / edited).open("a") as f:
            f.write("\n# an edit that is not a training input\n")
    assert plan_in(copy, corpus) == before
    with (copy / "model" / "train.py").open("a") as f:
        f.write("\n# a model edit\n")
    after = plan_in(copy, corpus)
    changed = {name for (kind, name, inputs), old in zip(after, before, strict=True) if inputs != old[2]}
    assert {"train-vm", "train-source"} <= changed
    with corpus.open("ab") as f:  # the same path, other contents: a new run
        f.write(b"\0")
    edited = plan_in(copy, corpus)
    changed = {name for (kind, name, inputs), old in zip(edited, after, strict=True) if inputs != old[2]}
    assert {"train-vm", "train-corpus"} <= changed and "train-source" not in changed


def test_the_source_archive_holds_only_what_training_reads():
    assets = source_archive().assets
    assert {name.split("/", 1)[0] for name in assets} == {"pyproject.toml", "README.md", "model", "robojam_format"}
    assert all(name.endswith(".py") for name in assets if "/" in name)
    assert assets["README.md"].text != (REPO_ROOT / "README.md").read_text()  # a fixed stand-in, not the docs
