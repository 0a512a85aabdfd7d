"""Issue 19 item 1: the image's build inputs are the same from any checkout, before and after `make test`.

pulumi-docker-build rebuilds when the recorded context or Dockerfile location changes (compared literally) or
when the hash of the context (every file .dockerignore lets in, plus the Dockerfile) changes. Two copies of
the working tree at different paths, one with what `make test` leaves behind (policy/venv, caches) and an
edited README and docs, are planned the way `pulumi up` runs the program (from infra/, Pulumi.yaml's `main`);
both must record the same image inputs and hash the same context.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from robojam_format.layout import REPO_ROOT

# Runs inside a copy, from its infra/ directory: the recorded image inputs and the digest of the context they name.
PLAN_AND_HASH = """
import hashlib, json, os, pathlib
from docker.utils.build import exclude_paths
from infra.mock_plan import plan_stack
from infra.tables import resource_types as types

image = plan_stack("dev").one(types.DOCKER_IMAGE).inputs
context = pathlib.Path(image["context"]["location"]).resolve()  # as the provider resolves it, from its cwd
dockerfile = pathlib.Path(image["dockerfile"]["location"]).resolve()
lines = (context / ".dockerignore").read_text().splitlines()
patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
digest = hashlib.sha256(dockerfile.read_bytes())
files = sorted(exclude_paths(str(context), patterns))
for name in files:
    path = context / name
    if path.is_file():
        digest.update(f"{name}:{path.stat().st_mode:o}:".encode() + path.read_bytes())
print(json.dumps({"inputs": image, "files": files, "digest": digest.hexdigest()}))
"""


def working_tree_copy(destination):
    """The files git tracks (or would track) in this checkout, copied to `destination`."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def after_make_test(root):
    """What `make test` and an editor leave in a checkout, and an edited README and deploy guide."""
    for leftover in ("policy/venv/bin/python", ".pytest_cache/v/cache/nodeids", ".tools/checkov/bin/checkov"):
        (root / leftover).parent.mkdir(parents=True, exist_ok=True)
        (root / leftover).write_text("left behind\n")
    (root / "service" / "__pycache__").mkdir(exist_ok=True)
    (root / "service" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0compiled")
    for doc in ("README.md", "docs/deploy.md"):
        (root / doc).write_text((root / doc).read_text() + "\nAn edit that is not the service.\n")


def planned_image(root):
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [sys.executable, "-c", PLAN_AND_HASH],
        cwd=root / "infra",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_two_checkouts_at_different_paths_record_identical_image_inputs(tmp_path):
    first = working_tree_copy(tmp_path / "one")
    second = working_tree_copy(tmp_path / "elsewhere" / "deeper" / "two")
    after_make_test(second)
    a, b = planned_image(first), planned_image(second)
    assert a["inputs"] == b["inputs"]
    assert a["inputs"]["context"]["location"] == ".." and a["inputs"]["dockerfile"]["location"] == "../Dockerfile"
    assert str(tmp_path) not in json.dumps(a["inputs"])
    assert a["files"] == b["files"] and a["digest"] == b["digest"]
    assert "service/app.py" in a["files"] and "model/weights/robojam.npz" in a["files"]


def test_an_edit_to_the_service_does_change_the_context_digest(tmp_path):
    """The digest above is not blind: a change to a copied file changes it."""
    first = working_tree_copy(tmp_path / "one")
    before = planned_image(first)["digest"]
    (first / "service" / "app.py").write_text((first / "service" / "app.py").read_text() + "\n# changed\n")
    assert planned_image(first)["digest"] != before
