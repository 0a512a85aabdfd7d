"""The port of the MicroJam app's reader (tests/support/microjam.py) is itself right: the HTTP tests rely on it."""

from __future__ import annotations

import pytest
from support.microjam import AppCrash, check_reply, parse_app_csv, parse_touch_line, swift_double

from devtools.performances import app_csv


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1.0), ("-2.5", -2.5), (".5", 0.5), ("5.", 5.0), ("1e3", 1000.0), ("+1E-2", 0.01), ("0x1p3", 8.0)],
)
def test_swift_double_accepts(text, value):
    assert swift_double(text) == value


@pytest.mark.parametrize("text", ["", " 1", "1 ", "1\r", "1_0", "abc", "1,0", "0x", "--1", "1e", "٣"])
def test_swift_double_rejects(text):
    assert swift_double(text) is None


def test_app_reader_drops_crashes_and_parses_like_the_app():
    assert parse_touch_line("time,x,y,z,moving") is None  # header: first field is not a number
    assert parse_touch_line("") is None
    assert parse_touch_line("0.5, 0.1, 0.2, 38.0, 1\r") is None  # CR at the end: the row is dropped
    touch = parse_touch_line("0.5, 0.1, 0.2, 38.0, 1")
    assert (touch.time, touch.x, touch.y, touch.z, touch.moving) == (0.5, 0.1, 0.2, 38.0, True)
    assert parse_touch_line("0.5,0.1,0.2,38.0,0").moving is False
    assert parse_touch_line("0.5, x, 0.2") is None  # guard fails at field 1 before indexing further
    with pytest.raises(AppCrash):
        parse_touch_line("0.5, 0.1, 0.2, 38.0")  # first field parses, fifth is missing
    with pytest.raises(AppCrash):
        parse_touch_line("0.5")
    assert len(parse_app_csv(app_csv([(0.1, 0.2, 0.3, 20.0, 0), (0.2, 0.2, 0.3, 20.0, 1)]))) == 2


@pytest.mark.parametrize(
    "reply",
    [
        # the original server's pandas to_csv(): an index column, so 6 fields and the index read as time
        ",time,x,y,z,moving\n0,0.1,0.5,0.5,38.0,0\n1,5.2,0.5,0.5,38.0,1\n",
        "time,x,y,z,moving\r\n0.100000,0.5,0.5,38.0,0\r\n5.200000,0.5,0.5,38.0,1\r\n",  # CRLF
        "time,x,y,z,moving\n-0.100000,0.5,0.5,38.0,0\n5.200000,0.5,0.5,38.0,1\n",  # negative first time
        "time,x,y,z,moving\n0.100000,1.5,0.5,38.0,0\n5.200000,0.5,0.5,38.0,1\n",  # x out of range
        "time,x,y,z,moving\n0.100000,0.5,0.5,38.0,0\n3.000000,0.5,0.5,38.0,0\n",  # too short
        "time,x,y,z,moving\n0.1,0.5,0.5,38.0,0\n5.1,0.5,0.5,38.0,0\n9.0,0.5,0.5,38.0,0\n",  # too long
        "time,x,y,z,moving\n0.100000,0.5,0.5,38.0,1\n5.100000,0.5,0.5,38.0,0\n",  # first row not a new touch
        "time,x,y,z,moving\n0.100000,0.5,0.5,38.0,0\n5.100000,0.5,0.5,38.0",  # no final newline, 4 fields
    ],
)
def test_check_reply_rejects_what_the_app_cannot_play(reply):
    with pytest.raises((AssertionError, AppCrash)):
        check_reply(reply, seconds=5.0)
