"""`make staging`: run every step, print one summary table, exit non-zero with the failing step's log tail."""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from robojam_format.layout import REPO_ROOT
from staging import base
from staging.context import Context
from staging.errors import StagingError
from staging.podman import TOOLS, Podman
from staging.report import StepResult, log_tail, table

Step = Callable[[Context], tuple[str, dict]]


def steps() -> dict[str, tuple[Step, bool]]:
    """Step name -> (function, needs the image): the image, then each target's steps (staging/step_<name>.py),
    the training targets' first: the droplet step promotes the artifact the training step made.

    Imported here so `--help` stays fast; a serving target's steps need the image.
    """
    from infra.targets import TARGETS
    from staging import step_image

    chosen: dict[str, tuple[Step, bool]] = {"image": (step_image.build, False)}
    for target in sorted(TARGETS.values(), key=lambda t: t.serves):  # stable: the registry's order otherwise
        for name in target.staging_steps:
            chosen[name] = (importlib.import_module(f"staging.step_{name}").run, target.serves)
    return chosen


def run_steps(ctx: Context, chosen: dict[str, tuple[Step, bool]], out=sys.stdout) -> list[StepResult]:
    """Run the steps in order; a step needing the image is skipped once the image step failed."""
    results: list[StepResult] = []
    logs = ctx.path("logs")
    for name, (function, needs_image) in chosen.items():
        ctx.log_path = logs / f"{name}.log"
        ctx.log_path.write_text("")
        if needs_image and any(r.name == "image" and r.result != "ok" for r in results):
            results.append(StepResult(name, "skipped", 0.0, ctx.log_path, "the image step failed"))
            continue
        print(f"staging: {name} ...", file=out, flush=True)
        start = time.monotonic()
        try:
            detail, measured = function(ctx)
            result = StepResult(name, "ok", time.monotonic() - start, ctx.log_path, detail, measured)
        except StagingError as exc:
            ctx.log(f"FAILED: {exc}")
            result = StepResult(name, "failed", time.monotonic() - start, ctx.log_path, str(exc).splitlines()[0])
        except Exception as exc:  # a bug in staging itself: keep going, keep the traceback in the step's log
            ctx.log(traceback.format_exc())
            result = StepResult(name, "failed", time.monotonic() - start, ctx.log_path, f"{type(exc).__name__}: {exc}")
        results.append(result)
        print(f"staging: {name} {result.result} ({result.seconds:.1f} s) {result.detail}", file=out, flush=True)
    return results


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m staging", description=__doc__)
    parser.add_argument("--build-dir", type=Path, default=REPO_ROOT / "build" / "staging", help="private state")
    parser.add_argument("--only", nargs="+", metavar="STEP", help="run only these steps (image is added if needed)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    available = steps()
    chosen = available
    if args.only:
        unknown = [s for s in args.only if s not in available]
        if unknown:
            parser.error(f"unknown step(s) {', '.join(unknown)}; choose from {', '.join(available)}.")
        wanted = set(args.only) | ({"image"} if any(available[s][1] for s in args.only) else set())
        chosen = {name: step for name, step in available.items() if name in wanted}
    missing = missing_tools()
    if missing:
        print(f"error: staging needs {', '.join(missing)} (apt-get install {' '.join(missing)}).", file=sys.stderr)
        return 2

    print(f"staging: {base.CAVEAT}", flush=True)
    build_dir = args.build_dir.resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(build_dir=build_dir, containers=Podman.under(build_dir))
    results = run_steps(ctx, chosen)
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    return finish(results)


def finish(results: list[StepResult], out=sys.stdout, err=sys.stderr) -> int:
    """Print the summary table and each failed step's log tail; 0 only if every step passed."""
    print("\n" + table(results), file=out)
    for r in results:
        if r.result == "failed":
            print(f"\n--- {r.name} failed: last lines of {r.log} ---\n{log_tail(r.log)}", file=err)
    return 0 if results and all(r.result == "ok" for r in results) else 1
