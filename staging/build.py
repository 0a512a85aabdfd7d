"""An image build as buildah runs it here: the Dockerfile, its context, build arguments and labels.

The image step builds the repository's Dockerfile as is; the droplet step builds it again with the build
arguments and labels the recorded plan gives pulumi-docker-build (`build_inputs`). Both use the local stand-in
base only (`--pull-never`) and the cached layers (`--layers`), so a second build redoes only what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infra.tables import resource_types as types


@dataclass(frozen=True)
class BuildInputs:
    context: Path
    dockerfile: Path
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


def build_inputs(recorded, cwd: Path | None = None) -> BuildInputs:
    """The plan's one image build (pulumi-docker-build's Image): its locations are relative to the directory the
    program ran in (`cwd`, default this process's, which planned it)."""
    inputs = recorded.one(types.DOCKER_IMAGE).inputs
    here = cwd or Path.cwd()
    return BuildInputs(
        context=(here / inputs["context"]["location"]).resolve(),
        dockerfile=(here / inputs["dockerfile"]["location"]).resolve(),
        build_args=dict(inputs.get("buildArgs") or {}),
        labels=dict(inputs.get("labels") or {}),
    )


def bud_args(inputs: BuildInputs, tag: str) -> list[str]:
    """`buildah bud`'s arguments for that build, tagged `tag`."""
    args = ["bud", "--pull-never", "--layers", "--format", "docker"]
    for name, value in sorted(inputs.build_args.items()):
        args += ["--build-arg", f"{name}={value}"]
    for name, value in sorted(inputs.labels.items()):
        args += ["--label", f"{name}={value}"]
    return [*args, "-f", str(inputs.dockerfile), "-t", tag, str(inputs.context)]
