"""A MicroJam performance as CSV: the one definition of what the app writes, what it reads, and how it is cleaned.

The app writes `time,x,y,z,moving` then rows formatted "%f, %f, %f, %f, %d\\n". It reads a CSV by splitting on
"\\n", deleting spaces and parsing fields 0-4 as numbers, and crashes on a row whose first field parses but that has
fewer than five fields, so what we write has exactly five plain numeric fields per row and LF line endings.

Inside RoboJam a performance is an (n, 3) array of rows `[x, y, dt]`: x, y in [0, 1] (position / view size), dt the
seconds since the previous touch (0 for the first). `parse_csv` reads the app's CSV into such rows as written,
`clean` makes any rows usable (training corpus and requests alike), `format_csv` writes rows back as the app's CSV.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from collections.abc import Iterable

import numpy as np
import orjson

log = logging.getLogger(__name__)

HEADER = ("time", "x", "y", "z", "moving")
REQUIRED_COLUMNS = ("time", "x", "y")
DIMENSION = 3  # a row is [x, y, dt]
MAX_DT = 5.0  # seconds: longer pauses are clipped to this
Z = 38.0  # touch radius in points; the model has no z, RoboJam always sent 38.0
MOVING_GAP = 0.1  # seconds: a longer gap starts a new touch (moving = 0)
APP_SEPARATOR = ", "  # the app's own rows: "%f, %f, %f, %f, %d\n"
SEPARATOR = ","  # ours: no spaces, which the app's reader deletes anyway


class PerformanceError(ValueError):
    """The CSV cannot be read as a performance; the message is one sentence saying where and why."""


class NoTouches(PerformanceError):
    """The CSV has a header but no touch rows."""


class TooManyRows(PerformanceError):
    """The CSV has more rows than the caller allows."""


def _number(text: str, column: str, where: str) -> float:
    text = text.strip()
    if not text:
        raise PerformanceError(f"{where}: the '{column}' value is empty.")
    if not text.isascii() or "_" in text:  # float() also takes other scripts' digits and 1_000; the app does not
        raise PerformanceError(f"{where}: the '{column}' value {text[:40]!r} is not a number.")
    try:
        value = float(text)
    except ValueError:
        raise PerformanceError(f"{where}: the '{column}' value {text[:40]!r} is not a number.") from None
    if not math.isfinite(value):
        raise PerformanceError(f"{where}: the '{column}' value {text[:40]!r} is not a finite number.")
    return value


def _columns(header: list[str], name: str) -> dict[str, int]:
    """Index of each required column, found by name (case and surrounding spaces ignored); no name twice."""
    names = [field.strip().lower() for field in header]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise PerformanceError(f"the header of {name} names the column '{repeated[0]}' more than once.")
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    if missing:
        raise PerformanceError(
            f"the header of {name} must name the columns {', '.join(REQUIRED_COLUMNS)} but lacks {', '.join(missing)}."
        )
    return {column: names.index(column) for column in REQUIRED_COLUMNS}


def _plain_table(text: str, max_rows: int | None, name: str) -> np.ndarray | None:
    """The `[time, x, y]` columns (n, 3) float64 of a plain CSV (what the app writes), or None to read it row by row.

    Plain: ASCII, LF lines with the header first (no quote, CR, NUL or underscore in it), no blank line but a last
    one, and rows of only digits, spaces, commas, '.', '-', '+', 'e' and 'E': then each row is a list of numbers
    in JSON's syntax, and orjson reads them all in one call. Every row must be as wide as the others and at least
    as wide as the required columns, every field a JSON number other than the integer -0 (JSON reads it as 0,
    `float` as -0.0); orjson refuses one that overflows to infinity. orjson rounds a number exactly as `float`
    (so `_number`) does, checked against it in tests/test_format_performance.py; anything else (every error
    included) is left to the row-by-row reader, which says what is wrong and where.
    """
    if not text.isascii() or len(text) > csv.field_size_limit():
        return None
    header, _, body = text.partition("\n")
    body = body.removesuffix("\n")
    if not body or any(mark in header for mark in _NOT_PLAIN):
        return None
    if body.encode("ascii").translate(None, _NUMBER_CHARACTERS) or _MINUS_ZERO.search(body):
        return None
    if max_rows is not None and body.count("\n") + 1 > max_rows:
        return None
    try:
        columns = _columns(header.split(","), name)
        table = np.array(orjson.loads("[[" + body.replace("\n", "],[") + "]]"), dtype=np.float64)
    except (PerformanceError, ValueError, TypeError, OverflowError):  # orjson's JSONDecodeError is a ValueError
        return None
    if table.ndim != 2 or table.shape[1] <= max(columns.values()):
        return None
    return table[:, [columns[column] for column in REQUIRED_COLUMNS]]


_NOT_PLAIN = ('"', "\r", "\0", "_")
_NUMBER_CHARACTERS = b"0123456789 ,.-+eE\n"
_MINUS_ZERO = re.compile(r"-0(?![.\deE])")  # the integer -0, which JSON reads as 0


def parse_csv(text: str, *, max_rows: int | None = None, name: str = "the performance") -> np.ndarray:
    """The `[x, y, dt]` rows (n >= 1, 3) float64 of a MicroJam CSV, as written: not clipped (see `clean`).

    Columns are found by header name (case and spaces ignored; `time`, `x`, `y` required, others ignored; no name
    twice); a leading byte-order mark and blank lines are skipped; dt = diff(time), the first 0. Every value must be
    a finite number in ASCII digits. Anything else raises a
    PerformanceError naming `name` (e.g. a file name) and the line.
    A plain CSV such as the app writes is read by orjson in one call (`_plain_table`); the rest row by row.
    """
    text = text.removeprefix("\ufeff")  # a byte-order mark, as spreadsheet exports start
    table = _plain_table(text, max_rows, name)
    if table is not None:
        rows = _steps(table)
        if np.isfinite(rows[:, 2]).all():
            return rows
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    columns: dict[str, int] | None = None
    rows: list[tuple[float, float, float]] = []
    lines: list[int] = []
    try:
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            if columns is None:
                columns = _columns(fields, name)
                continue
            if max_rows is not None and len(rows) == max_rows:
                raise TooManyRows(f"{name} has more than {max_rows} rows.")
            where = f"{name}, line {reader.line_num}"
            need = max(columns.values()) + 1
            if len(fields) < need:
                raise PerformanceError(f"{where} has {len(fields)} fields but needs at least {need}.")
            rows.append(tuple(_number(fields[columns[column]], column, where) for column in REQUIRED_COLUMNS))
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise PerformanceError(f"{name} is not valid CSV ({exc}).") from None
    if columns is None:
        raise PerformanceError(f"{name} is empty; it must be a CSV with a header line and at least one touch.")
    if not rows:
        raise NoTouches(f"{name} has a header but no touch rows.")
    steps = _steps(np.asarray(rows, dtype=np.float64))
    overflow = np.flatnonzero(~np.isfinite(steps[:, 2]))
    if overflow.size:
        raise PerformanceError(
            f"{name}, line {lines[overflow[0]]}: the time step from the previous row is not a finite number."
        )
    return steps


def _steps(table: np.ndarray) -> np.ndarray:
    """`[x, y, dt]` rows of `[time, x, y]` ones (n >= 1): dt = time - the previous row's time, the first 0; dt is
    not finite where that difference overflows."""
    rows = np.empty_like(table)
    rows[:, :2] = table[:, 1:]
    rows[0, 2] = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        np.subtract(table[1:, 0], table[:-1, 0], out=rows[1:, 2])
    return rows


def clean(events: np.ndarray) -> np.ndarray:
    """Usable float32 rows: non-finite rows dropped (counted in the log), x, y clipped to [0, 1], dt to [0, MAX_DT].

    Clipping dt at 0 means unsorted times cannot produce negative gaps.
    """
    events = np.asarray(events)
    if events.ndim != 2 or events.shape[1] != DIMENSION:
        raise PerformanceError(f"a performance has shape (n, {DIMENSION}) rows of [x, y, dt], got {events.shape}.")
    finite = np.isfinite(events).all(axis=1)
    dropped = int((~finite).sum())
    if dropped:
        log.warning("dropped %d non-finite rows", dropped)
    out = events[finite] if dropped else events
    rows = np.empty(out.shape, np.float32)
    rows[:, :2] = np.clip(out[:, :2], 0.0, 1.0)  # scalar bounds: a -0.0 inside them stays -0.0 (array bounds: +0.0)
    rows[:, 2] = np.clip(out[:, 2], 0.0, MAX_DT)
    return rows


def format_rows(rows: Iterable[tuple[float, float, float, float, int]], *, separator: str = SEPARATOR) -> str:
    """The CSV of `(time, x, y, z, moving)` rows: the header, then each row with six decimals and LF endings."""
    lines = [",".join(HEADER)]
    lines += [
        separator.join((f"{t:.6f}", f"{x:.6f}", f"{y:.6f}", f"{z:.6f}", f"{int(moving):d}"))
        for t, x, y, z, moving in rows
    ]
    return "\n".join(lines) + "\n"


def format_csv(events: np.ndarray, *, separator: str = SEPARATOR) -> str:
    """The app's CSV for `[x, y, dt]` rows: time = cumulative dt, z = Z, moving 0 on the first row and after gaps
    over MOVING_GAP. `separator=APP_SEPARATOR` writes the rows exactly as the app itself does."""
    events = np.asarray(events, dtype=np.float64)
    if events.ndim != 2 or events.shape[1] != DIMENSION or len(events) == 0:
        raise ValueError(f"expected generated events of shape (m>=1, 3), got {events.shape}.")
    dt = events[:, 2]
    # Compared in float32, the engine's precision, so a generated dt of float32(0.1) counts as "not > 0.1".
    moving = (dt.astype(np.float32) <= np.float32(MOVING_GAP)).astype(np.float64)
    moving[0] = 0
    table = np.column_stack([np.cumsum(dt), events[:, 0], events[:, 1], moving])
    # One %-format for all rows: "%.6f" writes a float as f"{value:.6f}" does, "%d" the 0 or 1 as format_rows;
    # z is the same on every row, so written once.
    row = separator.join(("%.6f", "%.6f", "%.6f", f"{Z:.6f}", "%d")) + "\n"
    return ",".join(HEADER) + "\n" + (row * len(events)) % tuple(table.ravel().tolist())
