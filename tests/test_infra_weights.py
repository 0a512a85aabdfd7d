"""Issue 18 item 3: robojam:weights is checked at preview by the contract and reaches the image and the outputs."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from infra.config import ConfigError
from infra.mock_plan import plan_stack
from robojam_format import artifact
from robojam_format.layout import SHIPPED_WEIGHTS

IMAGE = "docker-build:index:Image"


@pytest.fixture
def in_weights_dir(request):
    """A file in model/weights/ (the build context's folder), removed after the test."""
    made = []

    def make(name: str, data: bytes | None = None, copy_of=None):
        path = SHIPPED_WEIGHTS.parent / f"test-{request.node.name[:20]}-{name}"
        if copy_of is not None:
            shutil.copyfile(copy_of, path)
        else:
            path.write_bytes(data or b"")
        made.append(path)
        return path

    yield make
    for path in made:
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("stack", ["dev", "gke"])
def test_the_configured_artifact_is_built_into_the_image_labelled_and_reported(stack, in_weights_dir):
    trained = in_weights_dir("gpu.npz", copy_of=SHIPPED_WEIGHTS)
    plan = plan_stack(stack, {"robojam:weights": f"model/weights/{trained.name}"})
    image = plan.one(IMAGE).inputs
    sha = hashlib.sha256(trained.read_bytes()).hexdigest()
    assert image["buildArgs"] == {"WEIGHTS": f"model/weights/{trained.name}"}
    assert image["labels"] == {"org.robojam.weights.sha256": sha}
    assert plan.outputs["model"]["sha256"] == sha and plan.outputs["model"]["path"].endswith(trained.name)
    default = plan_stack(stack).one(IMAGE).inputs
    assert default["buildArgs"] == {"WEIGHTS": "model/weights/robojam.npz"}


@pytest.mark.parametrize("stack", ["dev", "gke"])
def test_a_bad_artifact_is_one_sentence_naming_the_key(stack, in_weights_dir, tmp_path):
    metadata, arrays = artifact.read(SHIPPED_WEIGHTS)
    two_d = in_weights_dir("2d.npz")
    with two_d.open("wb") as f:
        np.savez(f, metadata=np.array(__import__("json").dumps({**metadata, "dimension": 2})), **arrays)
    outside = tmp_path / "gpu.npz"
    shutil.copyfile(SHIPPED_WEIGHTS, outside)
    cases = {
        "model/weights/missing.npz": "not found",
        f"model/weights/{in_weights_dir('text.npz', b'hello').name}": "not an .npz archive",
        f"model/weights/{in_weights_dir('bare.npz', b'PK' + bytes(40)).name}": "not a valid .npz archive",
        f"model/weights/{two_d.name}": "dimension is 2, expected 3",
        str(outside): "must name a file in model/weights/",
    }
    for value, why in cases.items():
        with pytest.raises(ConfigError) as caught:
            plan_stack(stack, {"robojam:weights": value})
        message = str(caught.value)
        assert message.startswith("robojam:weights ") and why in message, message
        assert message.count("\n") == 0
