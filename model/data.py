"""The MicroJam corpus: load it from any of its three forms, clean it, split it by performance, cut windows.

Everything here is NumPy (plus h5py for the .h5 form) so the CLIs can reject bad data before TensorFlow loads.
A performance, its CSV form and its cleaning are defined once in `robojam_format.performance`, shared with the
service: a float32 array of shape (n, 3) with rows `[x, y, dt]`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robojam_format.performance import NoTouches, PerformanceError, clean, parse_csv

log = logging.getLogger(__name__)

DATA_ENV = "ROBOJAM_DATA"
H5_NAME = "TinyPerformanceCorpus.h5"
H5_DATASET = "total_performances"
NPZ_NAME = "microjam-performances.npz"
# The corpus's public home (github.com/cpmpercussion/creative-prediction-datasets) and its published digest.
H5_URL = "https://raw.githubusercontent.com/cpmpercussion/creative-prediction-datasets/main/datasets/" + H5_NAME
H5_SHA256 = "097f167dd775a761de35033fd94180a393dcb279d9f93820da707b925aff6416"


class DataError(ValueError):
    """The corpus is missing, unreadable, of the wrong shape or empty; the message is one sentence for a user."""


@dataclass(frozen=True)
class Corpus:
    """Cleaned performances plus where they came from."""

    performances: list[np.ndarray]
    source: Path
    sha256: str | None

    @property
    def n_events(self) -> int:
        return int(sum(len(p) for p in self.performances))


def resolve_data_path(path: str | os.PathLike | None) -> Path:
    """The path given, else $ROBOJAM_DATA; a directory resolves to the .h5, the .npz, or itself (CSV files)."""
    raw = path if path is not None else os.environ.get(DATA_ENV)
    if not raw:
        raise DataError(f"no corpus path given: pass --data PATH or set {DATA_ENV}.")
    p = Path(raw).expanduser()
    if p.is_dir():
        for name in (H5_NAME, NPZ_NAME):
            if (p / name).is_file():
                return p / name
    return p


def download_corpus(dest: Path) -> Path:
    """Fetch TinyPerformanceCorpus.h5 from its public home and verify its published sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.warning("downloading the MicroJam corpus from %s to %s", H5_URL, dest)
    try:
        with urllib.request.urlopen(H5_URL, timeout=60) as resp:  # noqa: S310 - fixed https URL
            payload = resp.read()
    except OSError as exc:
        raise DataError(f"could not download the corpus from {H5_URL}: {exc}.") from exc
    digest = hashlib.sha256(payload).hexdigest()
    if digest != H5_SHA256:
        raise DataError(f"downloaded corpus has sha256 {digest}, expected {H5_SHA256}; not using it.")
    dest.write_bytes(payload)
    return dest


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def load_corpus(path: str | os.PathLike | None = None, *, download: bool = False) -> Corpus:
    """Load and clean the corpus at `path` (.h5, .npz, or a directory of MicroJam CSV files)."""
    p = resolve_data_path(path)
    if not p.exists():
        if download and p.suffix == ".h5":
            download_corpus(p)
        else:
            hint = f" (or pass --download to fetch it from {H5_URL})" if p.suffix in (".h5", "") else ""
            raise DataError(f"corpus not found at {p}{hint}.")
    if p.is_dir():
        raw = _read_csv_dir(p)
        digest = None
    elif p.suffix == ".h5":
        raw = _read_h5(p)
        digest = file_sha256(p)
    elif p.suffix == ".npz":
        raw = _read_npz(p)
        digest = file_sha256(p)
    else:
        raise DataError(f"unsupported corpus file {p.name}: expected a .h5, a .npz or a directory of .csv files.")
    performances = [clean(perf) for perf in raw]
    performances = [perf for perf in performances if len(perf) > 0]
    if not performances:
        raise DataError(f"the corpus at {p} holds no usable touch events.")
    log.info("loaded %d performances, %d events from %s", len(performances), sum(map(len, performances)), p)
    return Corpus(performances=performances, source=p, sha256=digest)


def _check_events(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise DataError(f"{where} has shape {arr.shape}, expected (n, 3) rows of [x, y, dt].")
    return arr.astype(np.float32, copy=False)


def _read_h5(p: Path) -> list[np.ndarray]:
    """The published corpus concatenates performances; each starts with dt == 0, so split there."""
    import h5py

    try:
        with h5py.File(p, "r") as f:
            if H5_DATASET not in f:
                raise DataError(f"{p.name} has no dataset '{H5_DATASET}'.")
            arr = _check_events(np.asarray(f[H5_DATASET]), f"{p.name}:{H5_DATASET}")
    except OSError as exc:
        raise DataError(f"{p} is not a readable HDF5 file ({exc}).") from exc
    starts = np.flatnonzero(arr[:, 2] == 0.0)
    if len(starts) == 0 or starts[0] != 0:
        starts = np.concatenate([[0], starts])
    return [perf for perf in np.split(arr, starts[1:]) if len(perf)]


def _read_npz(p: Path) -> list[np.ndarray]:
    try:
        with np.load(p, allow_pickle=False) as z:
            if "events" not in z or "offsets" not in z:
                raise DataError(f"{p.name} must hold arrays 'events' and 'offsets'.")
            events = _check_events(z["events"], f"{p.name}:events")
            offsets = np.asarray(z["offsets"], dtype=np.int64)
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{p} is not a readable .npz archive ({exc}).") from exc
    if offsets.ndim != 1 or len(offsets) < 2 or offsets[0] != 0 or offsets[-1] != len(events):
        raise DataError(f"{p.name}: 'offsets' must run from 0 to len(events) = {len(events)}.")
    if np.any(np.diff(offsets) < 0):
        raise DataError(f"{p.name}: 'offsets' must be non-decreasing.")
    return [events[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def _read_csv_dir(p: Path) -> list[np.ndarray]:
    files = sorted(p.glob("*.csv"))
    if not files:
        raise DataError(f"{p} holds no .csv performances (and no {H5_NAME} or {NPZ_NAME}).")
    return [_read_csv(f) for f in files]


def _read_csv(p: Path) -> np.ndarray:
    """One performance file in the app's CSV (robojam_format.performance); a header alone is an empty one."""
    try:
        return parse_csv(p.read_text(encoding="utf-8"), name=p.name)
    except UnicodeDecodeError as exc:
        raise DataError(f"{p.name} is not UTF-8 text (byte {exc.start}); MicroJam writes its CSV in UTF-8.") from None
    except NoTouches:
        return np.zeros((0, 3), np.float32)
    except PerformanceError as exc:
        raise DataError(str(exc)) from None


def split_by_performance(
    performances: list[np.ndarray], val_fraction: float = 0.1, seed: int = 2018
) -> tuple[list[int], list[int]]:
    """Seeded split of performance indices: no performance contributes to both sets."""
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"validation fraction must be between 0 and 1, got {val_fraction}.")
    n = len(performances)
    if n < 2:
        raise DataError("the corpus needs at least 2 performances to split into training and validation.")
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def make_windows(performances: list[np.ndarray], seq_len: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate performances and cut overlapping windows; targets are inputs shifted by one event.

    Windows may span a boundary between two performances of the same split (each starts with dt = 0, which the
    network learns as "a new performance"), as RoboJam did; they never span the train/validation split.
    Returns (inputs, targets), each float32 (n_windows, seq_len, 3).
    """
    if seq_len < 1 or step < 1:
        raise DataError(f"sequence length and step must be positive, got {seq_len} and {step}.")
    if not performances:
        raise DataError("no performances to cut into windows.")
    stream = np.concatenate(performances).astype(np.float32, copy=False)
    if len(stream) < seq_len + 1:
        raise DataError(f"only {len(stream)} events: fewer than one window of {seq_len + 1}.")
    starts = np.arange(0, len(stream) - seq_len, step)
    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
    windows = stream[idx]
    return windows[:, :-1], windows[:, 1:]
