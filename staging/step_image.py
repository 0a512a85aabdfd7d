"""Step 1: build the repository's Dockerfile, unchanged, with buildah from the stand-in base."""

from __future__ import annotations

import time

from staging import base
from staging.build import BuildInputs, bud_args
from staging.context import IMAGE, Context


def build(ctx: Context) -> tuple[str, dict]:
    dockerfile = ctx.repo / "Dockerfile"
    name = base.from_name(dockerfile)
    ctx.log(base.CAVEAT)
    tarball = base.rootfs_tarball(ctx.build_dir, ctx.log)
    base.import_base(ctx.containers, tarball, name, ctx.log)
    start = time.monotonic()
    done = ctx.containers.buildah(*bud_args(BuildInputs(ctx.repo, dockerfile), IMAGE), timeout=1200)
    seconds = time.monotonic() - start
    ctx.log(done.stdout + done.stderr)
    size = int(ctx.containers.podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
    ctx.facts["image"] = IMAGE
    measured = {"image": IMAGE, "base": name, "size_mb": round(size / 1e6, 1), "build_seconds": round(seconds, 1)}
    return f"{IMAGE} {measured['size_mb']} MB, built in {seconds:.0f} s (FROM {name}: stand-in)", measured
