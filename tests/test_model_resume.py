"""A training run survives being killed: rerunning the identical command resumes after the last completed epoch and
ends exactly as an uninterrupted run; a finished run is not redone; a foreign or corrupt backup gives one line."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from model.mdrnn import build_model, compile_model, load_keras_model
from model.resume import (
    BACKUP,
    LATEST,
    AfterEpoch,
    BackupError,
    EpochWindows,
    RunBackup,
    callback_state,
    restore_callback_state,
)
from robojam_format.layout import REPO_ROOT

SMALL = ["--units", "16", "--layers", "1", "--mixtures", "2", "--epochs", "6", "--max-windows", "512"]
SMALL += ["--seq-len", "20", "--lr-patience", "1", "--patience", "3"]


def train_cmd(data_dir: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "model.train", "--data", str(data_dir / "TinyPerformanceCorpus.h5"), *SMALL, *extra]


def run(cmd: list[str], out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, "--out", str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def backed_up_epochs(out: Path) -> int:
    try:
        return int((out / BACKUP / LATEST).read_text().strip().rsplit("-", 1)[1])
    except (OSError, ValueError, IndexError):
        return 0


def weights_of(path: Path) -> list[np.ndarray]:
    return [np.asarray(w) for w in load_keras_model(path).get_weights()]


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
    """An uninterrupted run, and the same command killed (SIGKILL, as a preempted VM) after 2+ epochs, then rerun."""
    root = tmp_path_factory.mktemp("runs")
    cmd = train_cmd(data_dir, root)
    whole = run(cmd, root / "whole")
    assert whole.returncode == 0, whole.stderr
    killed = subprocess.Popen([*cmd, "--out", str(root / "killed")], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    while backed_up_epochs(root / "killed") < 2 and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    epochs_before_kill = backed_up_epochs(root / "killed")
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(60) == -signal.SIGKILL, "the run finished before it could be killed"
    resumed = run(cmd, root / "killed")
    assert resumed.returncode == 0, resumed.stderr
    again = run(cmd, root / "killed")
    return {"root": root, "whole": whole, "resumed": resumed, "again": again, "killed_at": epochs_before_kill}


@pytest.mark.slow
def test_a_killed_run_resumes_after_its_last_epoch_and_ends_as_an_uninterrupted_one(runs):
    whole, resumed, root, at = runs["whole"], runs["resumed"], runs["root"], runs["killed_at"]
    assert at >= 2
    resuming = [line for line in resumed.stdout.splitlines() if line.startswith("resuming from epoch")]
    assert len(resuming) == 1 and resuming[0].startswith(f"resuming from epoch {at + 1}:"), resumed.stdout
    assert f"Epoch {at}/" not in resumed.stdout  # no completed epoch is run again
    log_whole = (root / "whole" / "log.csv").read_text()
    log_resumed = (root / "killed" / "log.csv").read_text()
    assert log_resumed == log_whole  # one row per epoch, same losses and learning rates
    epochs = [int(line.split(",")[0]) for line in log_resumed.splitlines()[1:]]
    assert epochs == list(range(len(epochs))) and len(epochs) >= at + 1
    assert resumed.stdout.strip().splitlines()[-1] == whole.stdout.strip().splitlines()[-1].replace("whole", "killed")
    s_whole, s_resumed = (json.loads((root / name / "summary.json").read_text()) for name in ("whole", "killed"))
    for summary in (s_whole, s_resumed):
        del summary["wall_time_s"], summary["checkpoint"]
    assert s_resumed == s_whole
    for mine, theirs in zip(weights_of(root / "killed" / "best.keras"), weights_of(root / "whole" / "best.keras"),
                            strict=True):  # fmt: skip
        np.testing.assert_array_equal(mine, theirs)
    assert not (root / "killed" / BACKUP).exists()  # finished: summary.json is the marker


@pytest.mark.slow
def test_rerunning_a_finished_run_does_nothing_and_says_so(runs):
    again = runs["again"]
    assert again.returncode == 0, again.stderr
    lines = again.stdout.strip().splitlines()
    assert any(line.endswith("already finished; nothing to do.") for line in lines)
    assert lines[-1] == runs["resumed"].stdout.strip().splitlines()[-1]
    assert "Epoch " not in again.stdout


@pytest.mark.slow
def test_other_settings_are_refused_with_one_line_naming_the_difference(runs, data_dir):
    other = [*train_cmd(data_dir, runs["root"])]
    other[other.index("--units") + 1] = "8"
    assert "units = 16, not 8" in one_error_line(run(other, runs["root"] / "whole"))


def small_model() -> keras.Model:
    return compile_model(build_model(8, 1, 2), 2, 1e-3, 1.0)


def test_a_backup_restores_the_model_the_optimizer_and_the_callbacks_state(tmp_path):
    model = small_model()
    x = np.random.default_rng(0).random((32, 10, 3)).astype(np.float32)
    model.fit(x, x, epochs=1, verbose=0)
    stopping = keras.callbacks.EarlyStopping(patience=5)
    plateau = keras.callbacks.ReduceLROnPlateau(patience=2)
    stopping.wait, stopping.best, plateau.cooldown_counter, plateau.best = 3, 1.25, 1, math.inf
    backup = RunBackup(tmp_path, {"units": 8})
    backup.save(model, 4, callback_state([stopping, plateau]), 12.5, stopped=False)

    fresh = small_model()
    restored = backup.load(fresh)
    assert (restored.epoch, restored.seconds, restored.stopped) == (4, 12.5, False)
    for mine, theirs in zip(fresh.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    for mine, theirs in zip(fresh.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    stopping2, plateau2 = keras.callbacks.EarlyStopping(patience=5), keras.callbacks.ReduceLROnPlateau(patience=2)
    restore_callback_state([stopping2, plateau2], restored.callbacks)
    assert (stopping2.wait, stopping2.best, plateau2.cooldown_counter, plateau2.best) == (3, 1.25, 1, math.inf)


def test_a_backup_of_another_run_or_a_corrupt_one_is_refused_in_one_sentence(tmp_path):
    model = small_model()
    RunBackup(tmp_path, {"units": 8, "seed": 1}).save(model, 1, {}, 1.0, stopped=False)
    with pytest.raises(BackupError, match=r"seed = 1, not 2"):
        RunBackup(tmp_path, {"units": 8, "seed": 2}).load(small_model())
    folder = tmp_path / BACKUP / "epoch-00001"
    (folder / "state.weights.h5").write_bytes(b"truncated")
    with pytest.raises(BackupError, match="unreadable") as caught:
        RunBackup(tmp_path, {"units": 8, "seed": 1}).load(small_model())
    assert "\n" not in str(caught.value)
    (tmp_path / BACKUP / LATEST).write_text("epoch-99999\n")
    with pytest.raises(BackupError, match="unreadable"):
        RunBackup(tmp_path, {"units": 8, "seed": 1}).load(small_model())


def test_the_cli_turns_a_corrupt_backup_into_one_line(tmp_path, data_dir):
    out = tmp_path / "run"
    (out / BACKUP).mkdir(parents=True)
    (out / BACKUP / LATEST).write_text("epoch-00003\n")
    line = one_error_line(run(train_cmd(data_dir, out), out))
    assert "unreadable" in line and "delete it" in line


def test_each_epoch_order_is_a_pure_function_of_seed_and_epoch():
    x = np.arange(40, dtype=np.float32).reshape(10, 4, 1)
    a, b = EpochWindows(x, x, 3, seed=7), EpochWindows(x, x, 3, seed=7, epoch=2)
    a.set_epoch(2)
    assert len(a) == 4
    batches = [a[i][0] for i in range(len(a))]
    for i, batch in enumerate(batches):
        np.testing.assert_array_equal(batch, b[i][0])
    assert sorted(np.concatenate(batches)[:, 0, 0].tolist()) == x[:, 0, 0].tolist()  # every window once
    a.set_epoch(3)
    assert not all(np.array_equal(a[i][0], batches[i]) for i in range(len(a)))


@pytest.mark.slow
def test_the_after_epoch_command_runs_once_per_epoch_with_that_epochs_backup_in_place(data_dir, tmp_path):
    """Issue 18 item 2: the training VM copies the run folder to its bucket through ROBOJAM_AFTER_EPOCH."""
    out, seen = tmp_path / "run", tmp_path / "seen.log"
    hook = f"cat {out / BACKUP / LATEST} >> {seen}"
    cmd = [*train_cmd(data_dir, out), "--epochs", "2", "--out", str(out)]
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "ROBOJAM_AFTER_EPOCH": hook})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert seen.read_text().split() == ["epoch-00001", "epoch-00002"]


def test_a_failing_after_epoch_command_is_one_line_and_training_goes_on(capsys):
    hook = AfterEpoch("exit 3")
    hook.on_epoch_end(4)
    assert capsys.readouterr().out == "the after-epoch command exited 3 after epoch 5; training goes on.\n"
