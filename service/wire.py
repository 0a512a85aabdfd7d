"""The MicroJam wire format: the app's touch CSV in, a CSV the app's own parser accepts out.

The app writes `time,x,y,z,moving` then rows formatted "%f, %f, %f, %f, %d\\n". It reads a reply by splitting
on "\\n", deleting spaces and parsing fields 0-4 as numbers, and crashes on a row whose first field parses but
that has fewer than five fields, so replies have exactly five plain numeric fields and LF line endings.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

HEADER = ("time", "x", "y", "z", "moving")
REQUIRED_COLUMNS = ("time", "x", "y")
Z_VALUE = 38.0  # touch radius in points; the model has no z, RoboJam always sent 38.0
MOVING_GAP = 0.1  # seconds: a longer gap starts a new touch (moving = 0)
MAX_DT = 5.0  # seconds: longer pauses in the input are clipped to this


class WireError(ValueError):
    """The performance CSV cannot be used; `status` is the HTTP status to answer with."""

    status = 400


class TooManyRows(WireError):
    status = 413


def _number(text: str, column: str, line: int) -> float:
    text = text.strip()
    if not text:
        raise WireError(f"line {line}: the '{column}' value is empty.")
    try:
        value = float(text)
    except ValueError:
        raise WireError(f"line {line}: the '{column}' value {text[:40]!r} is not a number.") from None
    if not math.isfinite(value):
        raise WireError(f"line {line}: the '{column}' value {text[:40]!r} is not a finite number.")
    return value


def _columns(header: list[str]) -> dict[str, int]:
    """Index of each required column, found by name (case and surrounding spaces ignored)."""
    names = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise WireError(
            f"the CSV header must name the columns {', '.join(REQUIRED_COLUMNS)} but lacks {', '.join(missing)}."
        )
    return {name: names.index(name) for name in REQUIRED_COLUMNS}


def parse_performance(text: str, max_rows: int) -> np.ndarray:
    """Cleaned `[x, y, dt]` float32 events (n, 3) from the app's CSV.

    x and y are clipped to [0, 1]; dt = diff(time) with the first 0, clipped to [0, MAX_DT] (so unsorted times
    cannot produce negative gaps). Extra columns are ignored; blank lines are skipped.
    """
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    columns: dict[str, int] | None = None
    rows: list[tuple[float, float, float]] = []
    try:
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            if columns is None:
                columns = _columns(fields)
                continue
            if len(rows) == max_rows:
                raise TooManyRows(f"the performance has more than {max_rows} rows.")
            need = max(columns.values()) + 1
            if len(fields) < need:
                raise WireError(f"line {reader.line_num} has {len(fields)} fields but needs at least {need}.")
            rows.append(tuple(_number(fields[columns[name]], name, reader.line_num) for name in REQUIRED_COLUMNS))
    except csv.Error as exc:
        raise WireError(f"'perf' is not valid CSV ({exc}).") from None
    if columns is None:
        raise WireError("'perf' is empty; it must be a CSV with a header line and at least one touch.")
    if not rows:
        raise WireError("'perf' has a header but no touch rows.")
    table = np.asarray(rows, dtype=np.float64)
    dt = np.clip(np.diff(table[:, 0], prepend=table[0, 0]), 0.0, MAX_DT)
    xy = np.clip(table[:, 1:3], 0.0, 1.0)
    return np.column_stack([xy, dt]).astype(np.float32)


def format_performance(events: np.ndarray) -> str:
    """The app's CSV for generated `[x, y, dt]` events: time = cumulative dt, moving 0 after gaps > 0.1 s."""
    events = np.asarray(events, dtype=np.float64)
    if events.ndim != 2 or events.shape[1] != 3 or len(events) == 0:
        raise ValueError(f"expected generated events of shape (m>=1, 3), got {events.shape}.")
    dt = events[:, 2]
    times = np.cumsum(dt)
    # Compared in float32, the engine's precision, so a generated dt of float32(0.1) counts as "not > 0.1".
    moving = (dt.astype(np.float32) <= np.float32(MOVING_GAP)).astype(int)
    moving[0] = 0
    lines = [",".join(HEADER)]
    lines += [
        f"{t:.6f},{x:.6f},{y:.6f},{Z_VALUE:.6f},{m:d}"
        for t, x, y, m in zip(times, events[:, 0], events[:, 1], moving, strict=True)
    ]
    return "\n".join(lines) + "\n"
