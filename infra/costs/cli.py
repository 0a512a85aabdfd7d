"""`python -m infra.costs`: plan every stack under Pulumi's mocks (infra.mock_plan) and price it offline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infra.costs.catalogue import CATALOGUE_PATH, CatalogueError, load_catalogue
from infra.costs.measured import CapacityError, CapacityRecord, check_weights, read_capacity, sha256_of
from infra.costs.pricing import effective_assumptions, price_plan
from infra.costs.refresh import RefreshUnavailable, refresh
from infra.costs.report import budget_failures, build_report, shown
from infra.costs.sizes import droplet_variants, gke_variant
from infra.costs.stack import ConfigError, served_weights
from infra.costs.table import render

PROG = "python -m infra.costs"


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump: the CLI is also used from CI logs
        raise UsageError(message)


def _number(minimum: float, strict: bool = False):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value != value or value in (float("inf"), float("-inf")) or value < minimum or (strict and value == 0):
            raise argparse.ArgumentTypeError(f"{text!r} must be {'>' if strict else '>='} {minimum:g}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Price every Pulumi stack offline from the program itself.")
    p.add_argument("stacks", nargs="*", help="stack names (Pulumi.<name>.yaml); default: every stack in the repo")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--max-monthly",
        type=_number(0),
        metavar="USD",
        help="exit 1 when any stack's (maximum) monthly cost exceeds this budget",
    )
    p.add_argument("--plot", type=Path, metavar="PNG", help="write the break-even chart (PNG) here")
    p.add_argument(
        "--sizes",
        action="store_true",
        help="break-even across every catalogued droplet size and the GKE pool up to more nodes (table and --plot)",
    )
    p.add_argument(
        "--train-hours",
        type=_number(0, strict=True),
        metavar="H",
        help="hours of one training run (default: the GPU VM's maxRunDuration)",
    )
    p.add_argument(
        "--runs-per-month",
        type=_number(0),
        metavar="N",
        help="training runs a month on a GPU VM (default 4): the monthly figure and --max-monthly use it",
    )
    p.add_argument("--registry-gb", type=_number(0), metavar="GB", help="assumed container registry storage")
    p.add_argument("--bucket-gb", type=_number(0), metavar="GB", help="assumed storage bucket contents")
    p.add_argument(
        "--requests-per-month",
        type=_number(0),
        metavar="N",
        help="traffic the usage charges (egress, load balancing, logging, transfer) are priced for (default 1M)",
    )
    p.add_argument(
        "--capacity",
        type=Path,
        default=None,
        metavar="JSON",
        help="capacity record of `make bench-capacity` (default: benchmarks/capacity.json)",
    )
    p.add_argument("--catalogue", type=Path, default=CATALOGUE_PATH, metavar="JSON", help="price catalogue file")
    p.add_argument(
        "--refresh",
        action="store_true",
        help="update the catalogue from the GCP and DigitalOcean price APIs, then exit",
    )
    return p


def _stack_paths(names: list[str]) -> list[Path]:
    from infra.mock_plan import stack_files, stack_name

    known = {stack_name(path): path for path in stack_files()}
    if not names:
        if not known:
            raise UsageError("no Pulumi.<stack>.yaml files in the repository")
        return list(known.values())
    paths = []
    for name in names:
        if name in known:
            paths.append(known[name])
        elif name.endswith(".yaml") and Path(name).is_file():
            paths.append(Path(name))
        else:
            raise UsageError(f"unknown stack {name!r} (known: {', '.join(known) or 'none'})")
    return list(dict.fromkeys(paths))  # naming a stack twice prices it once


def _capacity(path: Path | None) -> CapacityRecord | None:
    """The file named by --capacity (which must exist), else benchmarks/capacity.json when there is one."""
    from robojam_format.layout import REPO_ROOT

    if path is not None and not path.is_file():
        raise UsageError(f"capacity file {path} does not exist")
    path = path or REPO_ROOT / "benchmarks" / "capacity.json"
    return read_capacity(path, shown(path))


def _check_weights(record: CapacityRecord | None, plan) -> None:
    """A serving stack is priced from the record only when the record measured the weights it serves."""
    weights = served_weights(plan)
    if record is not None and weights.is_file():
        check_weights(record, plan.stack, shown(weights), sha256_of(weights))


def _plan(path: Path):
    from infra.mock_plan import plan_stack, stack_name

    try:
        return plan_stack(path)
    except ConfigError as exc:
        raise UsageError(f"stack {stack_name(path)!r}: {exc}") from None


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.refresh:
        try:
            print(refresh(args.catalogue))
        except RefreshUnavailable as exc:
            print(f"refresh skipped: {exc}; keeping the bundled catalogue {args.catalogue}")
        return 0
    if args.plot and not args.plot.parent.is_dir():
        raise UsageError(f"cannot write the chart: folder {args.plot.parent} does not exist")
    catalogue = load_catalogue(args.catalogue)
    assumptions = effective_assumptions(
        catalogue,
        {
            "registry_storage_gb": args.registry_gb,
            "bucket_storage_gb": args.bucket_gb,
            "runs_per_month": args.runs_per_month,
            "requests_per_month": args.requests_per_month,
        },
    )
    record = _capacity(args.capacity)  # every input is checked before the (slower) planning starts
    if record is not None:
        assumptions.update(request_bytes=record.request_bytes, reply_bytes=record.reply_bytes)
    estimates, variants = [], []
    for path in _stack_paths(args.stacks):
        plan = _plan(path)
        estimate = price_plan(plan, catalogue, assumptions, args.train_hours)
        if estimate.serving is not None:
            _check_weights(record, plan)
        estimates.append(estimate)
        if args.sizes:
            variants += [price_plan(v, catalogue, assumptions) for v in droplet_variants(plan, catalogue)]
            variants += [price_plan(v, catalogue, assumptions) for v in gke_variant(plan)]
    report = build_report(estimates, catalogue, record, args.max_monthly, sizes=variants or None)
    print(json.dumps(report, indent=2) if args.json else render(report))
    if args.plot:
        from infra.costs.plot import plot_break_even

        plot_break_even(report, variants or estimates, args.plot, key="break_even_sizes" if variants else "break_even")
        print(f"chart written to {args.plot}", file=sys.stderr if args.json else sys.stdout)
    failures = budget_failures(report)
    for line in failures:
        print(line, file=sys.stderr)
    if args.max_monthly is not None and not failures and not args.json:
        print(f"every stack is within the --max-monthly ${args.max_monthly:,.2f} budget")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every expected failure is one line on stderr (exit 2 for bad input), never a traceback."""
    try:
        return run(argv)
    except (UsageError, CatalogueError, CapacityError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
