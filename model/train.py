"""Train the RoboJam MDRNN on the MicroJam corpus.

python -m model.train --data PATH --units 512 --layers 2 --mixtures 5 --epochs 100 --out runs/NAME

Writes into the run folder: best.keras (best validation NLL), log.csv (per-epoch losses), loss.png, summary.json,
and prints a final line with the best validation NLL. The same command runs on a laptop, a GPU VM and Colab.
With ROBOJAM_AFTER_EPOCH set, that shell command runs after each epoch's backup (the GPU VM's copy to its bucket).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from model.cli import cli_main, fail
from model.data import load_corpus, make_windows, split_by_performance
from model.defaults import DEFAULT_LAYERS, DEFAULT_MIXTURES, DEFAULT_UNITS, SCALE

# A shell command run after each epoch's backup (the training VM copies the run folder to its bucket).
AFTER_EPOCH = "ROBOJAM_AFTER_EPOCH"


@dataclass(frozen=True)
class Settings:
    """Everything that determines a run; stored in summary.json and the exported artifact."""

    data: str
    units: int = DEFAULT_UNITS
    layers: int = DEFAULT_LAYERS
    mixtures: int = DEFAULT_MIXTURES
    seq_len: int = 100
    step: int = 10
    batch_size: int = 64
    epochs: int = 100
    learning_rate: float = 1e-3
    clipnorm: float | None = 1.0
    lr_patience: int = 3
    val_fraction: float = 0.1
    patience: int = 10
    seed: int = 2018
    max_minutes: float | None = None
    max_windows: int | None = None


def parse_args(argv: list[str] | None) -> tuple[Settings, Path, bool]:
    p = argparse.ArgumentParser(prog="python -m model.train", description="Train the RoboJam MDRNN.")
    p.add_argument(
        "--data",
        default=os.environ.get("ROBOJAM_DATA"),
        help="corpus: .h5, .npz, a directory of MicroJam CSVs, or a directory holding those (default: $ROBOJAM_DATA)",
    )
    p.add_argument("--download", action="store_true", help="fetch the public corpus if --data does not exist")
    p.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/NAME")
    p.add_argument("--units", type=int, default=DEFAULT_UNITS)
    p.add_argument("--layers", type=int, default=DEFAULT_LAYERS)
    p.add_argument("--mixtures", type=int, default=DEFAULT_MIXTURES)
    p.add_argument("--seq-len", type=int, default=100, help="events per training window")
    p.add_argument("--step", type=int, default=10, help="events between window starts (overlap = seq-len - step)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--clipnorm", type=float, default=1.0, help="clip each gradient to this norm (0: no clipping)")
    p.add_argument(
        "--lr-patience",
        type=int,
        default=3,
        help="halve the learning rate after this many epochs without validation improvement",
    )
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of performances held out")
    p.add_argument("--patience", type=int, default=10, help="epochs without validation improvement before stopping")
    p.add_argument("--seed", type=int, default=2018)
    p.add_argument("--max-minutes", type=float, default=None, help="stop after the epoch that passes this budget")
    p.add_argument("--max-windows", type=int, default=None, help="use at most this many training windows (smoke runs)")
    a = p.parse_args(argv)
    if a.data is None:
        fail("no corpus given: pass --data PATH or set ROBOJAM_DATA.")
    for name in ("units", "layers", "mixtures", "seq_len", "step", "batch_size", "epochs", "patience", "lr_patience"):
        if getattr(a, name) < 1:
            fail(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(a, name)}.")
    if not (a.lr > 0 and math.isfinite(a.lr)):
        fail(f"--lr must be a positive number, got {a.lr}.")
    if not (a.clipnorm >= 0 and math.isfinite(a.clipnorm)):
        fail(f"--clipnorm must be a number >= 0, got {a.clipnorm}.")
    if a.max_windows is not None and a.max_windows < 1:
        fail(f"--max-windows must be a positive integer, got {a.max_windows}.")
    settings = Settings(
        data=str(a.data),
        units=a.units,
        layers=a.layers,
        mixtures=a.mixtures,
        seq_len=a.seq_len,
        step=a.step,
        batch_size=a.batch_size,
        epochs=a.epochs,
        learning_rate=a.lr,
        clipnorm=a.clipnorm or None,
        lr_patience=a.lr_patience,
        val_fraction=a.val_fraction,
        patience=a.patience,
        seed=a.seed,
        max_minutes=a.max_minutes,
        max_windows=a.max_windows,
    )
    return settings, a.out, a.download


def prepare_data(settings: Settings, download: bool = False):
    """Load, clean and split the corpus; returns (corpus, (x_train, y_train), (x_val, y_val)), all scaled."""
    corpus = load_corpus(settings.data, download=download)
    train_idx, val_idx = split_by_performance(corpus.performances, settings.val_fraction, settings.seed)
    x_train, y_train = make_windows([corpus.performances[i] for i in train_idx], settings.seq_len, settings.step)
    # Validation windows do not overlap: every validation event is scored once.
    x_val, y_val = make_windows([corpus.performances[i] for i in val_idx], settings.seq_len, settings.seq_len)
    if settings.max_windows is not None:
        keep = np.random.default_rng(settings.seed).permutation(len(x_train))[: settings.max_windows]
        x_train, y_train = x_train[np.sort(keep)], y_train[np.sort(keep)]
    return corpus, (x_train * SCALE, y_train * SCALE), (x_val * SCALE, y_val * SCALE)


def plot_losses(history: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], label="training NLL")
    ax.plot(epochs, history["val_loss"], label="validation NLL")
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL per event (scaled space)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fingerprint(settings: Settings, data_sha256: str) -> dict:
    """What a backup must match to be resumed: every setting but the wall-time budget, and the corpus's digest."""
    return {**{k: v for k, v in asdict(settings).items() if k != "max_minutes"}, "data_sha256": data_sha256}


def finished(out: Path, backup) -> dict | None:
    """The summary of a finished run in `out` (after saying so, with its final line); None if it has not finished.
    A finished run made with other settings or data is refused (one line naming the difference)."""
    path = out / "summary.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        theirs = fingerprint(Settings(**summary["settings"]), summary["data_sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fail(f"{path} is unreadable ({exc}); delete it, or use another --out.")
    problem = backup.mismatch(theirs)
    if problem:
        fail(problem)
    print(f"run {out} already finished; nothing to do.")
    final_line(summary)
    return summary


def final_line(summary: dict) -> None:
    note = " (stopped: NaN loss)" if summary["diverged"] else ""
    print(
        f"best validation NLL: {summary['best_val_nll']:.4f} at epoch {summary['best_epoch']} of "
        f"{summary['epochs_run']}{note}; checkpoint {summary['checkpoint']}"
    )


def read_log(path: Path, epochs: int | None = None) -> dict[str, list[float]]:
    """log.csv as columns, keeping only its first `epochs` rows (a killed run may have logged an epoch whose
    backup it never wrote: that epoch runs again and is logged once)."""
    import csv

    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if epochs is None or int(row["epoch"]) < epochs]
    if epochs is not None:
        with path.open("w", newline="", encoding="utf-8") as f:
            if rows:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
    return {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else {}) if key != "epoch"}


def train(settings: Settings, out: Path, download: bool = False) -> dict:
    """Run training and write the run folder; returns the summary dict.

    Rerunning the identical command resumes after the last completed epoch (model/resume.py) and ends as an
    uninterrupted run would; rerunning a finished run does nothing.
    """
    corpus, (x_train, y_train), (x_val, y_val) = prepare_data(settings, download)
    print(
        f"corpus {corpus.source}: {len(corpus.performances)} performances, {corpus.n_events} events; "
        f"{len(x_train)} training windows, {len(x_val)} validation windows of {settings.seq_len}"
    )

    import keras

    from model.callbacks import TimeBudget
    from model.mdrnn import build_model, compile_model
    from model.resume import AfterEpoch, BackupError, EpochBackup, EpochOrder, EpochWindows, RunBackup

    backup = RunBackup(out, fingerprint(settings, corpus.sha256))
    done = None if backup.exists() else finished(out, backup)
    if done is not None:
        return done
    keras.utils.set_random_seed(settings.seed)
    out.mkdir(parents=True, exist_ok=True)
    model = compile_model(
        build_model(settings.units, settings.layers, settings.mixtures),
        settings.mixtures,
        settings.learning_rate,
        settings.clipnorm,
    )
    restored = None
    if backup.exists():
        try:
            restored = backup.load(model)
        except BackupError as exc:
            fail(str(exc))
    start = restored.epoch if restored else 0
    complete = restored is not None and (restored.stopped or start >= settings.epochs)
    if complete and (done := finished(out, backup)) is not None:
        backup.remove()
        return done
    if restored and not complete:
        print(f"resuming from epoch {start + 1}: {start} of {settings.epochs} epochs done (backup {backup.root})")
    checkpoint = out / "best.keras"
    stateful = [
        keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=settings.lr_patience, min_lr=settings.learning_rate / 64, verbose=1
        ),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience),
    ]
    budget = TimeBudget(settings.max_minutes * 60.0) if settings.max_minutes is not None else None
    if budget is not None:
        stateful.append(budget)
    seconds_before = restored.seconds if restored else 0.0
    started = time.monotonic()

    def clock() -> float:
        return round(seconds_before + time.monotonic() - started, 3)

    windows = EpochWindows(x_train, y_train, settings.batch_size, settings.seed, start)
    log = out / "log.csv"
    read_log(log, start)  # drop rows of epochs the backup does not hold
    callbacks = [
        EpochOrder(windows),
        keras.callbacks.TerminateOnNaN(),
        *stateful,
        keras.callbacks.CSVLogger(log, append=start > 0),
        EpochBackup(backup, stateful, clock, restored),  # after every other callback's bookkeeping
    ]
    if os.environ.get(AFTER_EPOCH):
        callbacks.append(AfterEpoch(os.environ[AFTER_EPOCH]))  # sees the epoch's backup complete
    if not complete:
        model.fit(
            windows,
            epochs=settings.epochs,
            initial_epoch=start,
            validation_data=(x_val, y_val),
            batch_size=None,
            shuffle=False,  # EpochWindows shuffles, seeded by epoch; Keras's own batch order would not resume
            callbacks=callbacks,
            verbose=1 if os.isatty(1) else 2,
        )
    history = read_log(log)
    wall = clock()

    val = np.asarray(history.get("val_loss", []), dtype=float)
    finite = np.isfinite(val)
    diverged = not np.all(np.isfinite(history.get("loss", [np.nan])))
    if not finite.any() or not checkpoint.exists():
        fail("training diverged (NaN loss) before any finite validation NLL; no checkpoint was written.")
    best = int(np.nanargmin(np.where(finite, val, np.nan)))
    summary = {
        "settings": asdict(settings),
        "data_source": str(corpus.source),
        "data_sha256": corpus.sha256,
        "performances": len(corpus.performances),
        "events": corpus.n_events,
        "train_windows": len(x_train),
        "val_windows": len(x_val),
        "parameters": model.count_params(),
        "epochs_run": len(val),
        "best_epoch": best + 1,
        "best_val_nll": float(val[best]),
        "train_nll_at_best": float(history["loss"][best]),
        "diverged": diverged,
        "wall_time_s": round(wall, 1),
        "checkpoint": str(checkpoint),
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "accelerators": [d.name for d in _accelerators()],
        },
        "keras_version": keras.__version__,
    }
    plot_losses(
        history, out / "loss.png", f"RoboJam MDRNN {settings.layers}x{settings.units}, {settings.mixtures} mixtures"
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    backup.remove()  # summary.json now marks the run as finished
    final_line(summary)
    return summary


def _accelerators():
    try:
        import tensorflow as tf

        return tf.config.list_physical_devices("GPU")
    except ImportError:  # another Keras backend
        return []


def main(argv: list[str] | None = None) -> int:
    settings, out, download = parse_args(argv)
    train(settings, out, download)
    return 0


if __name__ == "__main__":
    cli_main(main)
