"""What makes a training run resumable: a per-epoch backup under the run folder and epochs whose order is a pure
function of (seed, epoch).

A spot VM can be preempted at any moment; rerunning the identical command must continue after the last completed
epoch and end exactly as an uninterrupted run would. So after every epoch `EpochBackup` (the last callback) writes the
model and optimizer state (`model.save_weights`), the epoch, the stateful callbacks' counters (early stopping, the
learning-rate schedule, the best score so far), the wall time used and whether training asked to stop, into a new
folder, then swaps one pointer file (`LATEST`) with an atomic rename: a kill at any moment leaves either the old
complete backup or the new one, never a mix. `EpochWindows` shuffles each epoch with its own seeded permutation, so
a resumed epoch sees the batches the uninterrupted run would have seen.

Keras's `BackupAndRestore` restores the model, the optimizer and the epoch, but not the callbacks' state nor the
shuffle order, and writes its two files without an atomic switch; so the run folder keeps its own backup, with the
same `save_weights`/`load_weights` calls underneath.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

BACKUP = "backup"
LATEST = "LATEST"
STATE = "state.json"
WEIGHTS = "state.weights.h5"
# The callbacks' public attributes that carry state across epochs (Keras 3.10+: EarlyStopping, ReduceLROnPlateau,
# ModelCheckpoint); the run's own TimeBudget carries the seconds used.
CALLBACK_STATE = {
    "EarlyStopping": ("wait", "best", "stopped_epoch", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
    "ModelCheckpoint": ("best",),
    "TimeBudget": ("used",),
}


class BackupError(Exception):
    """The run folder's backup cannot be used; the message is one sentence that says what to do."""


def _plain(value):
    """JSON-safe: infinities (a callback's initial best) as strings, NumPy scalars as Python numbers."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def _unplain(value):
    return float(value) if value in ("inf", "-inf", "nan") else value


def _unreadable(where: Path, exc: BaseException) -> BackupError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return BackupError(f"the backup in {where} is unreadable ({reason}); delete it to start the run afresh.")


@dataclass(frozen=True)
class Restored:
    """What a backup restores: the next epoch to run, the callbacks' state, the seconds used and whether training
    had already asked to stop (early stopping, time budget, NaN loss) at that epoch."""

    epoch: int
    callbacks: dict
    seconds: float
    stopped: bool


class RunBackup:
    """The backup folder of one run (`--out/backup`), identified by the run's fingerprint."""

    def __init__(self, out: Path, fingerprint: dict):
        self.root = Path(out) / BACKUP
        self.fingerprint = fingerprint

    def exists(self) -> bool:
        return (self.root / LATEST).exists()

    def load(self, model: keras.Model) -> Restored:
        """Restore the model's and optimizer's state; BackupError (one sentence) if the backup is unusable."""
        where = self.root
        try:
            folder = where / (where / LATEST).read_text(encoding="utf-8").strip()
            state = json.loads((folder / STATE).read_text(encoding="utf-8"))
            epoch, stopped, seconds = int(state["epoch"]), bool(state["stopped"]), float(state["seconds"])
            callbacks = {k: {a: _unplain(v) for a, v in s.items()} for k, s in state["callbacks"].items()}
            theirs = state["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _unreadable(where, exc) from exc
        problem = self.mismatch(theirs)
        if problem:
            raise BackupError(problem)
        try:
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)  # its slots must exist before loading into them
            model.load_weights(folder / WEIGHTS)
        except Exception as exc:  # h5py/keras raise many kinds on a truncated or foreign file
            raise _unreadable(where, exc) from exc
        return Restored(epoch, callbacks, seconds, stopped)

    def remove(self) -> None:
        """Drop the backup once the run has finished (its summary.json is the marker from then on)."""
        shutil.rmtree(self.root, ignore_errors=True)

    def mismatch(self, theirs: dict) -> str | None:
        """The first fingerprint key another run's record disagrees on, as one sentence; None when they agree."""
        keys = sorted(set(self.fingerprint) | set(theirs))
        for key in keys:
            if self.fingerprint.get(key) != theirs.get(key):
                return (
                    f"{self.root.parent} holds a run made with {key} = {theirs.get(key)!r}, not "
                    f"{self.fingerprint.get(key)!r}; rerun with the same settings and data, or use another --out."
                )
        return None

    def save(self, model: keras.Model, epoch: int, callbacks: dict, seconds: float, stopped: bool) -> None:
        """Write the state after `epoch` completed epochs into a new folder, then switch LATEST to it atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch:05d}"
        folder = self.root / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        model.save_weights(folder / WEIGHTS)
        state = {
            "epoch": epoch,
            "stopped": stopped,
            "seconds": seconds,
            "callbacks": {k: {a: _plain(v) for a, v in s.items()} for k, s in callbacks.items()},
            "fingerprint": self.fingerprint,
        }
        (folder / STATE).write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
        pointer = self.root / f"{LATEST}.tmp"
        pointer.write_text(name + "\n", encoding="utf-8")
        os.replace(pointer, self.root / LATEST)
        for old in self.root.glob("epoch-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)


def callback_state(callbacks: list) -> dict:
    """The state-carrying attributes of the callbacks that have any (see CALLBACK_STATE)."""
    return {
        type(cb).__name__: {a: getattr(cb, a) for a in CALLBACK_STATE[type(cb).__name__] if hasattr(cb, a)}
        for cb in callbacks
        if type(cb).__name__ in CALLBACK_STATE
    }


def restore_callback_state(callbacks: list, state: dict) -> None:
    for cb in callbacks:
        for attribute, value in state.get(type(cb).__name__, {}).items():
            setattr(cb, attribute, value)


class EpochBackup(keras.callbacks.Callback):
    """The last callback: after each epoch (and the others' bookkeeping) back the run up.

    Callbacks reset their counters in `on_train_begin`, so the restored state is applied after that, at the first
    epoch's start.
    """

    def __init__(self, backup: RunBackup, callbacks: list, clock, restored: Restored | None):
        super().__init__()
        self.backup, self.callbacks, self.clock, self.restored = backup, callbacks, clock, restored

    def on_epoch_begin(self, epoch, logs=None):
        if self.restored is not None:
            restore_callback_state(self.callbacks, self.restored.callbacks)
            self.restored = None

    def on_epoch_end(self, epoch, logs=None):
        stopped = bool(self.model.stop_training)
        self.backup.save(self.model, epoch + 1, callback_state(self.callbacks), self.clock(), stopped)


class EpochWindows(keras.utils.PyDataset):
    """Training windows in batches, shuffled per epoch by a permutation seeded with (seed, epoch): a resumed run
    feeds each epoch exactly the batches an uninterrupted one would."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, epoch: int = 0):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.set_epoch(epoch)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._order = epoch, self._permutation(epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.x[rows], self.y[rows]


class EpochOrder(keras.callbacks.Callback):
    """Tells the dataset which epoch is starting (before its batches are read)."""

    def __init__(self, windows: EpochWindows):
        super().__init__()
        self.windows = windows

    def on_epoch_begin(self, epoch, logs=None):
        self.windows.set_epoch(epoch)


class AfterEpoch(keras.callbacks.Callback):
    """After each epoch's backup, run a shell command (`ROBOJAM_AFTER_EPOCH`): the training VM copies the run
    folder to its bucket, so a VM started after a preemption resumes from there. A failing command is one line;
    training goes on (the next epoch's copy catches up)."""

    def __init__(self, command: str):
        super().__init__()
        self.command = command

    def on_epoch_end(self, epoch, logs=None):
        status = subprocess.run(self.command, shell=True, check=False).returncode
        if status:
            print(f"the after-epoch command exited {status} after epoch {epoch + 1}; training goes on.")
