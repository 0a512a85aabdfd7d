"""Continuation quality: do the engine's replies play like MicroJam performers, and like a reply to their call?

    python -m benchmarks.quality [--weights model/weights/robojam.npz] [--temperature 1.5 --sigma-temperature 0.01]
        [--repeats 10] [--limit N] [--precision fp32|int8] [--out benchmarks/quality.json]
        [--plot model/weights/quality.png]

Each held-out performance of the artifact's own training split (same corpus file, seed and fraction) is a call;
every system answers each call with a ~5 s reply:
- `model`: the service's engine and sampler (`Engine.continue_performance`) at the given temperatures;
- `other human`: a random other held-out performance (a derangement: never the call itself);
- `call replayed`: the call itself, played back;
- `uniform`: touches with x, y ~ U[0, 1] and dt ~ U[MIN_DT, 2 x the human median dt];
- `gaussian`: i.i.d. touches from one diagonal Gaussian fitted to the training events (the NLL baseline), clipped
  as the engine clips.
Touch statistics of the replies (touch rate, dt while moving and at touch-down, gap and tap shares, stroke length
and speed, spatial spread and coverage, centroid drift, duration, clipped share) are compared with the TRAINING
split's performances (the human reference: the held-out humans then show the sampling noise floor) by the
1-Wasserstein distance in units of the reference's standard deviation; per-touch statistics are pooled, per-
performance ones are one value per performance. Call -> reply relatedness: 1 - (mean distance of a reply's
standardised features to its own call) / (mean distance to the other calls); 0 means unrelated, 1 identical (the
replayed call). Intervals are the 2.5-97.5 % range over `--repeats` independent samplings; a seed fixes it all.

Outside `service/` and `model/` because it uses both (the engine, the corpus split): the data flow keeps them apart.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.data import DATA_ENV, load_corpus, split_by_performance
from model.evaluate import fit_diagonal_gaussian
from robojam_format.layout import REPO_ROOT, SHIPPED_WEIGHTS
from robojam_format.performance import MOVING_GAP
from service.engine import MIN_DT, PRECISIONS, Engine

SECONDS = 5.0  # reply length, the service's default
GRID = 8  # spatial coverage: share of a GRID x GRID grid's cells touched
PER_PERFORMANCE = (
    "touches_per_second",
    "gap_share",
    "tap_share",
    "spatial_spread",
    "coverage",
    "centroid_drift",
    "duration",
    "clipped_share",
)
PER_TOUCH = ("dt_moving", "dt_touch_down", "stroke_length", "stroke_speed")
FEATURES = PER_PERFORMANCE + PER_TOUCH
SYSTEMS = ("model", "other human", "call replayed", "uniform", "gaussian")


def strokes(events: np.ndarray) -> list[np.ndarray]:
    """The performance cut at touch-downs (dt > MOVING_GAP, and the first touch), as MicroJam's `moving` column."""
    starts = [0] + [i for i in range(1, len(events)) if events[i, 2] > MOVING_GAP]
    return [events[a:b] for a, b in zip(starts, starts[1:] + [len(events)], strict=True)]


def touch_features(events: np.ndarray) -> tuple[dict[str, float], dict[str, list[float]]]:
    """(one value per statistic in PER_PERFORMANCE, the per-touch values of each in PER_TOUCH) of one performance."""
    xy, dt = events[:, :2].astype(np.float64), events[:, 2].astype(np.float64)
    duration = float(dt.sum())
    parts = strokes(events)
    lengths = [float(np.linalg.norm(np.diff(s[:, :2], axis=0), axis=1).sum()) for s in parts if len(s) > 1]
    times = [float(s[1:, 2].sum()) for s in parts if len(s) > 1]
    half = max(1, len(events) // 2)
    cells = np.minimum((xy * GRID).astype(int), GRID - 1)
    later = dt[1:]
    clipped = (xy <= 0.0).any(axis=1) | (xy >= 1.0).any(axis=1)
    clipped[1:] |= events[1:, 2] <= np.float32(MIN_DT)  # as float32, as the engine clips; the first dt marks the start
    scalars = {
        "touches_per_second": len(events) / max(duration, MIN_DT),
        "gap_share": float((later > MOVING_GAP).mean()) if len(later) else 0.0,
        "tap_share": sum(len(s) == 1 for s in parts) / len(parts),
        "spatial_spread": float(xy.std(axis=0).mean()),
        "coverage": len({(a, b) for a, b in cells.tolist()}) / GRID**2,
        "centroid_drift": float(np.linalg.norm(xy[:half].mean(axis=0) - xy[half:].mean(axis=0)))
        if half < len(xy)
        else 0.0,
        "duration": duration,
        "clipped_share": float(clipped.mean()),
    }
    touches = {
        "dt_moving": later[later <= MOVING_GAP].tolist(),
        "dt_touch_down": later[later > MOVING_GAP].tolist(),
        "stroke_length": lengths,
        "stroke_speed": [length / t for length, t in zip(lengths, times, strict=True) if t > 0],
    }
    return scalars, touches


def wasserstein(a, b) -> float:
    """1-Wasserstein distance between two samples of one variable (NaN if either is empty)."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    if not len(a) or not len(b):
        return math.nan
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(a, grid[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, grid[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * np.diff(grid)))


def samples(performances: list[np.ndarray]) -> dict[str, list[float]]:
    """Every feature's sample over `performances`: one value each, or their touches pooled."""
    pooled: dict[str, list[float]] = {name: [] for name in FEATURES}
    for events in performances:
        scalars, touches = touch_features(events)
        for name, value in scalars.items():
            pooled[name].append(value)
        for name, values in touches.items():
            pooled[name].extend(values)
    return pooled


def relatedness(calls: list[np.ndarray], replies: list[np.ndarray], scale: np.ndarray) -> float:
    """1 - mean distance of each reply to its own call / mean distance to the other calls (standardised
    per-performance features)."""

    def vector(events):
        return np.array([touch_features(events)[0][n] for n in PER_PERFORMANCE]) / scale

    c, r = np.array([vector(e) for e in calls]), np.array([vector(e) for e in replies])
    distances = np.linalg.norm(r[:, None, :] - c[None, :, :], axis=2)
    own = np.diag(distances).mean()
    other = (distances.sum() - np.trace(distances)) / (len(calls) * (len(calls) - 1))
    return float(1.0 - own / other)


def iid_reply(draw: Callable[[], np.ndarray]) -> np.ndarray:
    """Touches from `draw()` (one [x, y, dt] each), clipped as the engine clips, until their dt sums to SECONDS."""
    rows, total = [], 0.0
    while total < SECONDS:
        row = np.clip(draw(), [0.0, 0.0, MIN_DT], [1.0, 1.0, np.inf]).astype(np.float32)
        rows.append(row)
        total += float(row[2])
    return np.array(rows)


def replies(system: str, calls, engine, rng, options, reference) -> list[np.ndarray]:
    """Every call's reply from `system` (one of SYSTEMS)."""
    n = len(calls)
    if system == "model":
        return [engine.continue_performance(call, rng=rng, seconds=SECONDS, **options) for call in calls]
    if system == "other human":
        shift = rng.permutation(n)  # a derangement: call i gets call order[(k+1) % n]
        partner = {int(shift[k]): int(shift[(k + 1) % n]) for k in range(n)}
        return [calls[partner[i]] for i in range(n)]
    if system == "call replayed":
        return list(calls)
    if system == "uniform":
        high = 2.0 * reference["median_dt"]
        return [iid_reply(lambda: np.array([*rng.random(2), rng.uniform(MIN_DT, high)])) for _ in calls]
    if system == "gaussian":
        mean, std = reference["gaussian"]
        return [iid_reply(lambda: rng.normal(mean, std)) for _ in calls]
    raise ValueError(f"unknown system {system!r}")


@dataclass(frozen=True)
class Setting:
    """What every system is measured against: the engine, the held-out calls and the training split's human
    reference (its pooled statistics, their spreads, the baselines' fitted values)."""

    engine: Engine
    calls: list[np.ndarray]
    human: dict[str, list[float]]
    spread: dict[str, float]
    reference: dict
    corpus_sha256: str
    reference_performances: int

    @property
    def scale(self) -> np.ndarray:
        """The per-performance statistics' spreads, in PER_PERFORMANCE's order (relatedness's units)."""
        return np.array([self.spread[n] for n in PER_PERFORMANCE])


def setting(weights: Path, data: Path, limit: int | None, precision: str = "fp32") -> Setting:
    """The artifact's own training split (same corpus, seed and fraction): the first `limit` held-out calls and the
    training performances as the human reference; the model in `precision` (service.engine.PRECISIONS)."""
    engine = Engine.load(weights, precision)
    run = engine.metadata["training"]
    corpus = load_corpus(data)
    train_idx, val_idx = split_by_performance(corpus.performances, run["val_fraction"], run["seed"])
    calls = [corpus.performances[i] for i in val_idx if len(corpus.performances[i]) > 1][:limit]
    train = [corpus.performances[i] for i in train_idx]
    human = samples(train)
    spread = {name: float(np.std(human[name])) or 1.0 for name in FEATURES}
    all_dt = np.concatenate([p[1:, 2] for p in train])
    reference = {"median_dt": float(np.median(all_dt)), "gaussian": fit_diagonal_gaussian(np.concatenate(train))}
    return Setting(engine, calls, human, spread, reference, corpus.sha256, len(train))


def measurements(system: str, where: Setting, options: dict, repeats: int, seed: int) -> dict[str, dict | list]:
    """`system`'s replies sampled `repeats` times (the r-th with the generator seeded [seed, system's index, r], so
    every temperature draws the same random numbers): per repeat, each statistic's distance to the human reference
    (in its spreads), its mean over the replies, and the call -> reply relatedness."""
    distances = {name: [] for name in FEATURES}
    means = {name: [] for name in FEATURES}
    related = []
    for r in range(repeats):
        rng = np.random.default_rng([seed, SYSTEMS.index(system), r])
        answer = replies(system, where.calls, where.engine, rng, options, where.reference)
        got = samples(answer)
        for name in FEATURES:
            distances[name].append(wasserstein(got[name], where.human[name]) / where.spread[name])
            means[name].append(np.mean(got[name]) if got[name] else math.nan)
        related.append(relatedness(where.calls, answer, where.scale))
    return {"distance": distances, "mean": means, "relatedness": related}


def summarised(measured: dict) -> dict:
    """`measurements` as the report shows them: distances and relatedness as intervals, the mean values' means."""
    return {
        "distance": {name: interval(values) for name, values in measured["distance"].items()},
        "mean": {name: finite(np.mean(values)) for name, values in measured["mean"].items()},
        "relatedness": interval(measured["relatedness"]),
    }


def evaluate(weights: Path, data: Path, *, temperature: float, sigma_temperature: float, repeats: int,
             limit: int | None, seed: int, precision: str = "fp32") -> dict:  # fmt: skip
    """The whole evaluation as a JSON-ready dict (the model in `precision`)."""
    where = setting(weights, data, limit, precision)
    options = {"temperature": temperature, "sigma_temperature": sigma_temperature}
    results = {system: summarised(measurements(system, where, options, repeats, seed)) for system in SYSTEMS}
    report = {
        "weights": weights_label(weights),
        "corpus_sha256": where.corpus_sha256,
        "calls": len(where.calls),
        "reference_performances": where.reference_performances,
        "settings": {**options, "seconds": SECONDS, "repeats": repeats, "seed": seed, "precision": precision},
        "human_mean": {name: float(np.mean(where.human[name])) for name in FEATURES},
        "systems": results,
    }
    report["verdict"] = verdict(report)
    return report


def weights_label(weights: Path) -> str:
    """The artifact's path as the report records it: relative to the repository where it lies inside it."""
    return str(weights.relative_to(REPO_ROOT) if weights.is_relative_to(REPO_ROOT) else weights)


def finite(value) -> float | None:
    """A float for the JSON, None where a statistic has no value (e.g. no touch-downs at all)."""
    return float(value) if np.isfinite(value) else None


def interval(values: list[float]) -> dict[str, float | None]:
    """Mean and the 2.5-97.5 % range of repeated measurements."""
    v = np.asarray(values, np.float64)
    return {"mean": finite(np.mean(v)), "low": finite(np.percentile(v, 2.5)), "high": finite(np.percentile(v, 97.5))}


def verdict(report: dict) -> dict[str, dict]:
    """Per baseline: the statistics where the model's replies are nearer the human reference, and where farther
    (a missing value counts as farther), and whether it relates replies to calls more."""
    model, out = report["systems"]["model"], {}
    for system in SYSTEMS[1:]:
        other = report["systems"][system]
        mine = {n: model["distance"][n]["mean"] for n in FEATURES}
        theirs = {n: other["distance"][n]["mean"] for n in FEATURES}
        wins = [n for n in FEATURES if (mine[n] if mine[n] is not None else math.inf) < (theirs[n] or math.inf)]
        out[system] = {
            "model_nearer": wins,
            "model_farther": [n for n in FEATURES if n not in wins],
            "model_more_related": model["relatedness"]["mean"] > other["relatedness"]["mean"],
        }
    return out


def table(report: dict) -> str:
    """The Markdown table for the model card: distance to the human reference per feature and system."""
    lines = [
        "| statistic | human mean | " + " | ".join(SYSTEMS) + " |",
        "| --- | --- | " + " | ".join("---" for _ in SYSTEMS) + " |",
    ]
    for name in FEATURES:
        cells = []
        for system in SYSTEMS:
            d = report["systems"][system]["distance"][name]
            value = report["systems"][system]["mean"][name]
            cells.append(
                "–" if d["mean"] is None else f"{d['mean']:.2f} [{d['low']:.2f}, {d['high']:.2f}] ({value:.3g})"
            )
        lines.append(f"| {name} | {report['human_mean'][name]:.3g} | " + " | ".join(cells) + " |")
    related = [report["systems"][s]["relatedness"] for s in SYSTEMS]
    lines.append("| call → reply relatedness | | " + " | ".join(
        f"{r['mean']:.2f} [{r['low']:.2f}, {r['high']:.2f}]" for r in related) + " |")  # fmt: skip
    return "\n".join(lines)


def plot(report: dict, out: Path) -> None:
    """Distances per statistic (bars) for every system, with their intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(SYSTEMS)
    for k, system in enumerate(SYSTEMS):
        d = report["systems"][system]["distance"]
        mean, low, high = (np.array([d[n][k] or 0.0 for n in FEATURES]) for k in ("mean", "low", "high"))
        err = np.maximum(0.0, np.array([mean - low, high - mean]))  # rounding can put the mean a hair outside
        ax.bar(np.arange(len(FEATURES)) + k * width, mean, width, yerr=err, label=system)
    ax.set_xticks(np.arange(len(FEATURES)) + 0.4 - width / 2, FEATURES, rotation=30, ha="right")
    ax.set_ylabel("W1 to human reference / reference std")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_title(f"Reply statistics vs MicroJam performers ({report['calls']} held-out calls)")
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every quality run shares: the weights, the corpus, the samplings, the slice, the seed, the out."""
    parser.add_argument("--weights", type=Path, default=SHIPPED_WEIGHTS)
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get(DATA_ENV, REPO_ROOT.parent / "shared" / "data")),
        help="the corpus file or directory (default: $ROBOJAM_DATA, else ../shared/data)",
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None, help="only the first N held-out calls (a quick slice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON report (default: print it)")


def write_report(report: dict, out: Path | None) -> None:
    """The report as indented JSON at `out`, or on stdout."""
    text = json.dumps(report, indent=2)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    parser.add_argument("--temperature", type=float, default=1.5)
    parser.add_argument("--sigma-temperature", type=float, default=0.01)
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="the engine's (ROBOJAM_PRECISION)")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the distances")
    args = parser.parse_args(argv)
    report = evaluate(args.weights, args.data, temperature=args.temperature, sigma_temperature=args.sigma_temperature,
                      repeats=args.repeats, limit=args.limit, seed=args.seed, precision=args.precision)  # fmt: skip
    write_report(report, args.out)
    if args.plot:
        plot(report, args.plot)
    print(table(report), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
