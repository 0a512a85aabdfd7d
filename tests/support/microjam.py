"""The MicroJam app's side of the wire, for the tests: its own CSV reader (a port) and a reply check (its writer is
`devtools.performances.app_csv`).

`parse_touch_line` is a line-for-line port of the app's `TouchRecord(fromCSVLine:)` (microjam, Swift):

    let components = line.replacingOccurrences(of: " ", with: "").components(separatedBy: ",")
    guard let time = Double(components[0]), let x = Double(components[1]), let y = Double(components[2]),
          let z = Double(components[3]), let mov = Double(components[4]) else { return nil }

and the app reads a performance as
`csv.components(separatedBy: "\\n").flatMap(TouchRecord.init(fromCSVLine:))`. The guard stops at the first
field that does not parse, so a line whose first field parses but that has fewer than five fields indexes past
the end of the array and crashes the app (`AppCrash` here). Swift's `Double(String)` takes the whole string or
nothing (no surrounding whitespace, so a trailing CR drops the row).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from robojam_format.performance import HEADER

HEADER_LINE = ",".join(HEADER)

_DECIMAL = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_HEX = r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
_SPECIAL = r"[+-]?(?:[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])"


class AppCrash(Exception):
    """The app would crash on this input (Swift array index out of range)."""


def swift_double(text: str) -> float | None:
    """Swift's `Double(String)`: the whole string must be a decimal, hex or inf/nan literal, else nil."""
    if re.fullmatch(_DECIMAL, text):
        return float(text)
    if re.fullmatch(_HEX, text):
        sign = -1.0 if text.startswith("-") else 1.0
        return sign * float.fromhex(text.lstrip("+-"))
    if re.fullmatch(_SPECIAL, text):
        return float(text)
    return None


@dataclass(frozen=True)
class Touch:
    time: float
    x: float
    y: float
    z: float
    moving: bool
    mov: float  # the raw fifth field


def parse_touch_line(line: str) -> Touch | None:
    """Port of `TouchRecord(fromCSVLine:)`: a Touch, None (row dropped), or AppCrash."""
    components = line.replace(" ", "").split(",")
    values = []
    for index in range(5):
        if index >= len(components):
            raise AppCrash(f"index {index} out of range for line {line!r}")
        value = swift_double(components[index])
        if value is None:
            return None
        values.append(value)
    t, x, y, z, mov = values
    return Touch(time=t, x=x, y=y, z=z, moving=mov == 1, mov=mov)


def parse_app_csv(text: str) -> list[Touch]:
    """What the app keeps from a CSV: the touches of every line that parses."""
    return [touch for touch in map(parse_touch_line, text.split("\n")) if touch is not None]


def check_reply(text: str, seconds: float) -> list[Touch]:
    """Assert a reply is what the app can play: every row accepted and valid, duration in [s, s + last dt]."""
    assert "\r" not in text and text.endswith("\n")
    lines = text.split("\n")
    assert lines[0] == HEADER_LINE and lines[-1] == ""
    body = lines[1:-1]
    assert body, "the reply has no touches"
    for line in body:
        assert len(line.split(",")) == 5, f"not exactly 5 fields: {line!r}"
        assert parse_touch_line(line) is not None, f"the app would drop {line!r}"
    assert parse_touch_line(lines[0]) is None  # the header is skipped, not a touch
    touches = parse_app_csv(text)
    assert len(touches) == len(body)
    times = np.array([touch.time for touch in touches])
    dt = np.diff(times, prepend=0.0)
    for touch in touches:
        assert all(math.isfinite(v) for v in (touch.time, touch.x, touch.y, touch.z))
        assert 0.0 <= touch.x <= 1.0 and 0.0 <= touch.y <= 1.0
        assert touch.z == 38.0 and touch.mov in (0.0, 1.0)
    assert dt.min() >= 0.001 - 2e-6, "times must increase by at least the 1 ms minimum step"
    assert touches[0].mov == 0.0, "the first touch must start a new touch"
    for touch, step in zip(touches[1:], dt[1:], strict=True):
        if abs(step - 0.1) > 2e-6:  # six printed decimals cannot decide a gap of exactly 0.1 s
            assert touch.mov == (0.0 if step > 0.1 else 1.0)
    tol = 1e-5 * len(touches)
    assert times[-1] >= seconds - tol, f"reply lasts {times[-1]:.4f} s, less than {seconds} s"
    assert times[-1] - dt[-1] < seconds + tol, "the reply went on after reaching the requested length"
    return touches
