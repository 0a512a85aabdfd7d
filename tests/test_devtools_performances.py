"""devtools.performances: the typical performances are seeded, plausible and read back as written."""

from __future__ import annotations

import numpy as np
from support.microjam import parse_app_csv, parse_touch_line

from devtools.performances import random_performance, typical_events, typical_request
from robojam_format.performance import clean, parse_csv


def test_typical_events_are_seeded_float32_rows_inside_the_contracts_limits():
    events = typical_events(200, seed=3)
    assert events.shape == (200, 3) and events.dtype == np.float32
    assert np.array_equal(events, typical_events(200, seed=3))
    assert not np.array_equal(events, typical_events(200, seed=4))
    assert events[0, 2] == 0.0 and (events[:, :2] >= 0).all() and (events[:, :2] <= 1).all()
    assert 0.03 < events[1:, 2].mean() < 0.07  # about 50 ms a touch


def test_the_typical_request_is_the_typical_events_as_the_app_writes_them():
    text = typical_request(100, seed=7)
    lines = text.split("\n")
    assert len(lines) == 102 and lines[-1] == "" and ", " in lines[1]  # header, 100 rows, the app's separator
    assert all(parse_touch_line(line) is not None for line in lines[1:-1])
    np.testing.assert_allclose(clean(parse_csv(text)), typical_events(100, seed=7), atol=2e-6)


def test_an_app_performance_lasts_about_the_seconds_asked_and_the_app_reads_every_row():
    for seconds in (0.3, 5.0):
        text = random_performance(seed=2, seconds=seconds)
        touches = parse_app_csv(text)
        assert len(touches) == text.count("\n") - 1 and touches[0].mov == 0.0
        assert seconds - 0.7 < touches[-1].time < seconds + 0.7
    assert random_performance(seed=2) == random_performance(seed=2) != random_performance(seed=3)
