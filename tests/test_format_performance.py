"""The MicroJam CSV contract (robojam_format.performance) both ways: what the app sends, what it reads back.

The service reads a request as `clean(parse_csv(...))` and answers with `format_csv`; the corpus loader uses the
same `parse_csv` and `clean`, so these tests hold training and serving to one definition.
"""

from __future__ import annotations

import decimal

import numpy as np
import pytest
from support.microjam import check_reply

from devtools.performances import app_csv, typical_request
from robojam_format import performance
from robojam_format.performance import (
    APP_SEPARATOR,
    MAX_DT,
    MOVING_GAP,
    PerformanceError,
    TooManyRows,
    Z,
    clean,
    format_csv,
    format_rows,
    parse_csv,
)
from service.errors import status_of


def read(text: str, max_rows: int) -> np.ndarray:
    """What the service does with a request's CSV."""
    return clean(parse_csv(text, max_rows=max_rows))


# ---- parsing what the app sends ----------------------------------------------------------------------------


def test_parse_app_csv_gives_clean_xy_dt():
    text = app_csv([(0.5, 0.1, 0.2, 25.0, 0), (0.75, 0.3, 0.4, 25.0, 1), (1.0, 0.5, 0.6, 38.0, 1)])
    events = read(text, max_rows=10)
    assert events.dtype == np.float32 and events.shape == (3, 3)
    np.testing.assert_allclose(events, [[0.1, 0.2, 0.0], [0.3, 0.4, 0.25], [0.5, 0.6, 0.25]], atol=1e-6)


def test_parse_clips_xy_and_dt():
    text = "time,x,y\n10,-0.5,1.5\n9,0.5,0.5\n30,2,-1\n30.5,0.25,0.75\n"
    events = read(text, max_rows=10)
    np.testing.assert_allclose(
        events, [[0, 1, 0], [0.5, 0.5, 0], [1, 0, MAX_DT], [0.25, 0.75, 0.5]], atol=1e-6
    )  # time going backwards gives dt 0; a 21 s pause is clipped to 5 s


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clean_clips_each_column_and_keeps_every_value_inside_its_bounds_bit_for_bit(dtype):
    events = np.array([[-0.0, 0.5, -0.0], [2.0, -1.0, 9.0], [0.1, 1.0, 0.3], [np.nan, 0.2, 0.1]], dtype=dtype)
    cleaned = clean(events)
    expected = np.array([[-0.0, 0.5, -0.0], [1.0, 0.0, MAX_DT], [0.1, 1.0, 0.3]], dtype=np.float32)  # NaN row dropped
    assert cleaned.dtype == np.float32 and cleaned.flags.c_contiguous
    assert np.array_equal(cleaned.view(np.uint32), expected.view(np.uint32))  # signed zeros included


def test_columns_found_by_name_extra_ignored_crlf_and_blank_lines_accepted():
    text = " Moving , Y ,extra, X,TIME\r\n\r\n0, 0.2, a, 0.1, 1.0\r\n1, 0.4, b, 0.3, 1.5\r\n\r\n"
    events = read(text, max_rows=10)
    np.testing.assert_allclose(events, [[0.1, 0.2, 0.0], [0.3, 0.4, 0.5]], atol=1e-6)


def test_row_limit_is_inclusive():
    rows = [(0.01 * i, 0.5, 0.5, 20.0, 1) for i in range(5)]
    assert len(read(app_csv(rows), max_rows=5)) == 5
    with pytest.raises(TooManyRows, match="more than 4 rows") as raised:
        read(app_csv(rows), max_rows=4)
    assert status_of(raised.value) == 413


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
    with pytest.raises(PerformanceError, match=message) as raised:
        read(text, max_rows=10)
    assert status_of(raised.value) == 400 and str(raised.value).endswith(".")


PLAIN_ODDITIES = [
    "time,x,y\n1e-3,0.5,0.25\n2E1, 5.0,-0.0\n-1.5e+2,-0e0,0e-400\n",  # exponents, signs, zeros of both signs
    " Moving , Y ,extra, X,TIME\n0, 0.2, 7, 0.1, 1.0\n1, 0.4, 8, 0.3, 1.5\n",  # by name, ignored columns
    "time,x,y\n 0.1 ,0.2 , 0.3 ,4\n0.2,0.3,0.4,5\n",  # spaces, rows wider than the header
    "time,x,y\n0,0,0\n1e308,1,1\n",  # large but finite
    "time,x,y\n9007199254740993,18446744073709551615,123456789012345678901234567890\n",  # integers past 2**53
    "time,x,y\n0.1,0.2,0.3",  # no final newline
]
ROW_BY_ROW_ODDITIES = [
    "time,x,y\n+0.5,.25,5.\n",  # a sign or a bare point JSON has no number for
    "time,x,y\n-0,0,0\n1,-0,-0\n",  # the integer -0: -0.0 to float, 0 to JSON
    " Moving , Y ,extra, X,TIME\n0, 0.2, a, 0.1, 1.0\n1, 0.4, b, 0.3, 1.5\n",  # text in an ignored column
    "time,x,y\n\t0.1 ,0.2\t, 0.3 \n0.2,0.3,0.4,5,6,7\n0.3,0.4,0.5,,\n",  # tabs, uneven rows, blank fields
    "time,x,y\n00.5,0,0\n",  # a leading zero
]


def bits(table: np.ndarray) -> np.ndarray:
    """The float64 values' bit patterns: equal only if every value is, signed zeros included."""
    return np.ascontiguousarray(table, dtype=np.float64).view(np.uint64)


class RowReaderReached(Exception):
    pass


def no_row_reader(monkeypatch) -> None:
    def reader(*args, **kwargs):
        raise RowReaderReached()

    monkeypatch.setattr(performance.csv, "reader", reader)


@pytest.mark.parametrize("text", [typical_request(100, seed) for seed in range(3)] + PLAIN_ODDITIES)
def test_a_plain_csv_is_read_without_the_row_reader_and_exactly_as_it_would_read_it(text, monkeypatch):
    row_by_row = parse_csv(text.replace("\n", "\r\n"))  # a CR is not plain: read row by row
    no_row_reader(monkeypatch)
    assert np.array_equal(bits(parse_csv(text)), bits(row_by_row))


@pytest.mark.parametrize("text", ROW_BY_ROW_ODDITIES)
def test_what_json_would_read_otherwise_goes_to_the_row_reader(text, monkeypatch):
    parse_csv(text)  # readable
    no_row_reader(monkeypatch)
    with pytest.raises(RowReaderReached):
        parse_csv(text)


def number_texts(rng: np.random.Generator, n: int) -> list[str]:
    """Decimal texts of doubles across the range, in the forms a CSV writer uses, and long or halfway mantissas."""
    doubles = rng.integers(0, 2**64, n, dtype=np.uint64).view(np.float64)
    doubles = doubles[np.isfinite(doubles)]
    texts = [form(value) for value in doubles.tolist() for form in (repr, "{:.6f}".format, "{:.17g}".format)]
    texts += [f"{value:.25e}" for value in rng.random(n).tolist()]
    texts += [f"{k / 128:.40f}"[:30] + "5" for k in range(1, 256, 2)]  # just past a 1/128 halfway point
    texts += [str(int(value)) for value in rng.integers(2**53, 2**63, n)]
    texts += ["".join(map(str, rng.integers(1, 10, size))) for size in rng.integers(20, 40, n)]  # past 2**64
    return [text for text in texts if text != "-0"]


def halfway_texts() -> list[str]:
    """Exact decimal expansions of points halfway between neighbouring doubles (subnormal, above 1, the two largest),
    and the texts one unit in their last digit below and above, where a reader that rounds wrong shows it."""
    with decimal.localcontext(prec=1200):
        points = [
            decimal.Decimal(2) ** -1075,
            decimal.Decimal(2) ** -1074 * 3 / 2,
            1 + decimal.Decimal(2) ** -53,
            decimal.Decimal(2) ** 1023 * (2 - 3 * decimal.Decimal(2) ** -53),
        ]
        texts = []
        for point in points:
            exact = f"{point:f}"
            unit = decimal.Decimal(1).scaleb(decimal.Decimal(exact).as_tuple().exponent)
            texts += [exact, f"{decimal.Decimal(exact) - unit:f}", f"{decimal.Decimal(exact) + unit:f}"]
    return texts


def test_numbers_halfway_between_doubles_are_read_as_float_reads_them(monkeypatch):
    texts = halfway_texts()
    text = "time,x,y\n" + "".join(f"{row},{value},0\n" for row, value in enumerate(texts))
    assert len(text) < 100_000  # plain: within the csv module's field size limit
    no_row_reader(monkeypatch)
    assert np.array_equal(bits(parse_csv(text)[:, 0]), bits(np.array([float(value) for value in texts])))


@pytest.mark.parametrize("seed", range(8))
def test_every_number_is_read_as_float_reads_it(seed, monkeypatch):
    """orjson's decimal-to-double (the plain path) against float's (the row reader's), bit for bit."""
    texts = number_texts(np.random.default_rng(seed), 100)  # a CSV within the csv module's field size limit
    pairs = [texts[i : i + 2] for i in range(0, len(texts) - 1, 2)]
    text = "time,x,y\n" + "".join(f"{row},{x},{y}\n" for row, (x, y) in enumerate(pairs))
    row_by_row = parse_csv(text.replace("\n", "\r\n"))
    no_row_reader(monkeypatch)
    plain = parse_csv(text)
    assert np.array_equal(bits(plain), bits(row_by_row))
    assert np.array_equal(bits(plain[:, :2]), bits(np.array([[float(x), float(y)] for x, y in pairs])))


# ---- writing what the app reads ----------------------------------------------------------------------------


def test_format_writes_cumulative_time_moving_and_z():
    events = np.array([[0.1, 0.2, 0.05], [0.3, 0.4, 0.1], [0.5, 0.6, 0.25], [1.0, 0.0, 0.001]], np.float32)
    text = format_csv(events)
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
    back = read(format_csv(events), max_rows=100)
    np.testing.assert_allclose(back[:, :2], events[:, :2], atol=1e-6)
    np.testing.assert_allclose(back[1:, 2], events[1:, 2], atol=2e-6)


def test_formatted_reply_is_accepted_by_the_app_reader():
    rng = np.random.default_rng(1)
    dt = rng.uniform(0.001, 0.2, 200)
    dt = dt[: np.searchsorted(np.cumsum(dt), 5.0) + 1]  # stops at the first touch reaching 5 s, like the engine
    events = np.column_stack([rng.random((len(dt), 2)), dt]).astype(np.float32)
    touches = check_reply(format_csv(events), seconds=5.0)
    assert len(touches) == len(dt)


@pytest.mark.parametrize("separator", [",", APP_SEPARATOR])
def test_format_csv_writes_each_row_as_format_rows_does(separator):
    rng = np.random.default_rng(2)
    events = np.column_stack([rng.random((300, 2)) * 3 - 1, rng.exponential(0.1, 300)]).astype(np.float32)
    x, y, dt = events.astype(np.float64).T
    moving = [0] + [int(step <= np.float32(MOVING_GAP)) for step in events[1:, 2]]
    rows = zip(np.cumsum(dt), x, y, [Z] * 300, moving, strict=True)
    assert format_csv(events, separator=separator) == format_rows(rows, separator=separator)


def test_format_refuses_empty_or_misshapen_events():
    for bad in (np.zeros((0, 3)), np.zeros((4, 2)), np.zeros(3)):
        with pytest.raises(ValueError, match="expected generated events"):
            format_csv(bad)


# ---- the corpus side: parse keeps values as written, clean makes them usable --------------------------------


def test_microjam_csv_reads_the_app_format_by_header_name():
    text = (
        "time,x,y,z,moving\n"
        "0.000000, 0.500000, 0.250000, 38.000000, 0\n"
        "0.100000, 0.600000, 0.300000, 38.000000, 1\n"
        "0.350000, 1.200000, 0.350000, 38.000000, 1\n"
    )
    out = parse_csv(text)
    np.testing.assert_allclose(out, [[0.5, 0.25, 0.0], [0.6, 0.3, 0.1], [1.2, 0.35, 0.25]], atol=1e-6)
    reordered = "y,extra,x,time\n0.25,a,0.5,0\n0.3,b,0.6,0.1\n"
    np.testing.assert_allclose(parse_csv(reordered), out[:2], atol=1e-6)


def test_clean_drops_non_finite_rows_and_logs_the_count(caplog):
    events = np.array([[0.5, 0.5, 0.0], [np.nan, 0.1, 0.1], [2.0, -1.0, 9.0], [0.1, np.inf, 0.2]], np.float32)
    with caplog.at_level("WARNING"):
        out = clean(events)
    np.testing.assert_array_equal(out, np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 5.0]], np.float32))
    assert "dropped 2 non-finite rows" in caplog.text


def test_a_time_step_that_overflows_is_refused_naming_the_line():
    with pytest.raises(PerformanceError, match=r"^perf\.csv, line 3: the time step .* not a finite number\.$"):
        parse_csv("time,x,y\n1e308,0,0\n-1e308,0,0\n", name="perf.csv")
