"""The MicroJam CSV both ways, and the port of the app's reader that the HTTP tests rely on."""

from __future__ import annotations

import numpy as np
import pytest
from service_support import AppCrash, app_csv, check_reply, parse_app_csv, parse_touch_line, swift_double

from service import wire

# ---- parsing what the app sends ----------------------------------------------------------------------------


def test_parse_app_csv_gives_clean_xy_dt():
    text = app_csv([(0.5, 0.1, 0.2, 25.0, 0), (0.75, 0.3, 0.4, 25.0, 1), (1.0, 0.5, 0.6, 38.0, 1)])
    events = wire.parse_performance(text, max_rows=10)
    assert events.dtype == np.float32 and events.shape == (3, 3)
    np.testing.assert_allclose(events, [[0.1, 0.2, 0.0], [0.3, 0.4, 0.25], [0.5, 0.6, 0.25]], atol=1e-6)


def test_parse_clips_xy_and_dt():
    text = "time,x,y\n10,-0.5,1.5\n9,0.5,0.5\n30,2,-1\n30.5,0.25,0.75\n"
    events = wire.parse_performance(text, max_rows=10)
    np.testing.assert_allclose(
        events, [[0, 1, 0], [0.5, 0.5, 0], [1, 0, wire.MAX_DT], [0.25, 0.75, 0.5]], atol=1e-6
    )  # time going backwards gives dt 0; a 21 s pause is clipped to 5 s


def test_columns_found_by_name_extra_ignored_crlf_and_blank_lines_accepted():
    text = " Moving , Y ,extra, X,TIME\r\n\r\n0, 0.2, a, 0.1, 1.0\r\n1, 0.4, b, 0.3, 1.5\r\n\r\n"
    events = wire.parse_performance(text, max_rows=10)
    np.testing.assert_allclose(events, [[0.1, 0.2, 0.0], [0.3, 0.4, 0.5]], atol=1e-6)


def test_row_limit_is_inclusive():
    rows = [(0.01 * i, 0.5, 0.5, 20.0, 1) for i in range(5)]
    assert len(wire.parse_performance(app_csv(rows), max_rows=5)) == 5
    with pytest.raises(wire.TooManyRows, match="more than 4 rows") as raised:
        wire.parse_performance(app_csv(rows), max_rows=4)
    assert raised.value.status == 413


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("time,x,y,z,moving\n", "no touch rows"),
        ("time,x,z\n1,2,3\n", "lacks y"),
        ("0.1, 0.2, 0.3, 20.0, 0\n", "lacks time, x, y"),
        ("time,x,y\n0.1,0.2\n", "line 2 has 2 fields but needs at least 3"),
        ("time,x,y\n0.1,0.2,\n", "line 2: the 'y' value is empty"),
        ("time,x,y\n0.1,zero,0.2\n", "line 2: the 'x' value 'zero' is not a number"),
        ("time,x,y\n0,0,0\n0.1,0.2,Infinity\n", "line 3: the 'y' value 'Infinity' is not a finite number"),
        ("time,x,y\n-nan,0.2,0.2\n", "is not a finite number"),
        ("time,x,y\n0.1,0.\x002,0.3\n", "'0.\\\\x002' is not a number"),
        ("time,x,y\n" + "1" * 140_000 + ",0,0\n", "not valid CSV"),  # past the csv module's field size limit
    ],
)
def test_unusable_csv_raises_one_sentence(text, message):
    with pytest.raises(wire.WireError, match=message) as raised:
        wire.parse_performance(text, max_rows=10)
    assert raised.value.status == 400 and str(raised.value).endswith(".")


# ---- writing what the app reads ----------------------------------------------------------------------------


def test_format_writes_cumulative_time_moving_and_z():
    events = np.array([[0.1, 0.2, 0.05], [0.3, 0.4, 0.1], [0.5, 0.6, 0.25], [1.0, 0.0, 0.001]], np.float32)
    text = wire.format_performance(events)
    lines = text.split("\n")
    assert lines[0] == "time,x,y,z,moving" and lines[-1] == ""
    assert lines[1].startswith("0.050000,0.100000,0.200000,38.000000,0")
    times = [float(line.split(",")[0]) for line in lines[1:-1]]
    np.testing.assert_allclose(times, [0.05, 0.15, 0.4, 0.401], atol=1e-6)
    # first row starts a touch; dt 0.1 is still moving; dt 0.25 > 0.1 starts a new touch
    assert [line.split(",")[4] for line in lines[1:-1]] == ["0", "1", "0", "1"]


def test_format_then_parse_round_trips():
    rng = np.random.default_rng(0)
    events = np.column_stack([rng.random((50, 2)), rng.uniform(0.001, 0.3, 50)]).astype(np.float32)
    back = wire.parse_performance(wire.format_performance(events), max_rows=100)
    np.testing.assert_allclose(back[:, :2], events[:, :2], atol=1e-6)
    np.testing.assert_allclose(back[1:, 2], events[1:, 2], atol=2e-6)


def test_formatted_reply_is_accepted_by_the_app_reader():
    rng = np.random.default_rng(1)
    dt = rng.uniform(0.001, 0.2, 200)
    dt = dt[: np.searchsorted(np.cumsum(dt), 5.0) + 1]  # stops at the first touch reaching 5 s, like the engine
    events = np.column_stack([rng.random((len(dt), 2)), dt]).astype(np.float32)
    touches = check_reply(wire.format_performance(events), seconds=5.0)
    assert len(touches) == len(dt)


def test_format_refuses_empty_or_misshapen_events():
    for bad in (np.zeros((0, 3)), np.zeros((4, 2)), np.zeros(3)):
        with pytest.raises(ValueError, match="expected generated events"):
            wire.format_performance(bad)


# ---- the port of the app's reader (tests/service_support.py) is itself right -------------------------------


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
