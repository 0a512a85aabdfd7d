"""The play page in a real browser against the real service: Debian's Chromium, driven by Playwright.

The server is gunicorn as deployed (devtools/gunicorn.py) serving the shipped weights on 127.0.0.1.
Each test opens a fresh browser profile; screenshots go to the test's tmp dir (pytest prints where).
No browser is downloaded: Playwright launches /usr/bin/chromium, which .ci/run installs with apt.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from support import require
from support.microjam import HEADER_LINE, check_reply, parse_app_csv

from devtools.gunicorn import GunicornProcess
from devtools.performances import app_csv
from robojam_format.layout import SHIPPED_WEIGHTS

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"viewport": {"width": 1000, "height": 760}}
PHONE = {"viewport": {"width": 360, "height": 740}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
ROW = re.compile(r"\d+\.\d{6}, \d+\.\d{6}, \d+\.\d{6}, \d+\.\d{6}, [01]")
TIMEOUT_MS = 30_000
# The page's CSP forbids eval: Playwright evaluates a bare expression with eval inside the page, so every
# predicate given to wait_for_function is a function ("() => ..."), passed in over the DevTools protocol.

COUNT_PIXELS = """(name) => {
    const hex = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    const c = document.getElementById('pad');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (want.every((v, k) => Math.abs(d[i + k] - v) <= 6)) n += 1;
    return n;
}"""

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # reported by the fixture: require() fails in CI, skips locally
    sync_playwright = None


@pytest.fixture(scope="module")
def playwright():
    require(sync_playwright is not None, "the playwright package is not installed (dev extra)")
    require(CHROMIUM.is_file(), f"{CHROMIUM} not found (apt-get install chromium)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[GunicornProcess]:
    tmp = tmp_path_factory.mktemp("web_server")
    with GunicornProcess(tmp / "gunicorn.log", env={"ROBOJAM_WEIGHTS": str(SHIPPED_WEIGHTS)}) as srv:
        srv.wait_ready()
        yield srv


class Page:
    """One browser page with everything it requested and every console complaint recorded."""

    def __init__(self, page):
        self.page = page
        self.requests: list[str] = []
        self.problems: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", lambda msg: msg.type == "error" and self.problems.append(f"console: {msg.text}"))
        page.set_default_timeout(TIMEOUT_MS)

    def open(self, url: str) -> Page:
        self.page.goto(url + "/")
        # Both start-up requests done: sliders enabled from the OpenAPI schema, footer filled from /api/model.
        self.page.wait_for_function("() => document.getElementById('model').dataset.units !== undefined")
        self.page.wait_for_function("() => !document.getElementById('seconds').disabled")
        return self

    def pad(self) -> dict:
        return self.page.locator("#pad").bounding_box()

    def at(self, fx: float, fy: float) -> tuple[float, float]:
        box = self.pad()
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    def mouse_stroke(self, points: list[tuple[float, float]], pause_ms: int = 15, release: bool = True) -> None:
        mouse = self.page.mouse
        mouse.move(*self.at(*points[0]))
        mouse.down()
        for point in points[1:]:
            mouse.move(*self.at(*point))
            self.page.wait_for_timeout(pause_ms)
        if release:
            mouse.up()

    def jam(self, button: str = "#jam"):
        """Click a button that sends; (request body, reply CSV) of the request it made."""
        with self.page.expect_response("**/api/predict") as info:
            self.page.click(button)
        response = info.value
        return response.request.post_data_json, response

    def pixels(self, colour: str = "--robojam") -> int:
        """Canvas pixels painted in a layer's colour (the CSS variable the page draws with)."""
        return self.page.evaluate(COUNT_PIXELS, colour)

    def wait_reply_drawn(self, minimum: int = 50) -> None:
        self.page.wait_for_function(f"(min) => ({COUNT_PIXELS})('--robojam') >= min", arg=minimum)

    def error(self) -> str:
        self.page.wait_for_selector("#error:not([hidden])")
        return self.page.inner_text("#error")

    def shot(self, path: Path) -> None:
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000


@pytest.fixture
def browser(playwright, tmp_path):
    """open(**context options) -> Page, each in a fresh user-data dir; all closed after the test."""
    contexts = []

    def open_page(**options) -> Page:
        profile = tmp_path / f"profile-{len(contexts)}"
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, **options
        )
        contexts.append(context)
        return Page(context.pages[0] if context.pages else context.new_page())

    yield open_page
    for context in contexts:
        context.close()


def sent_rows(body: dict) -> list[tuple[float, float, float, float, int]]:
    """The rows of a performance the page sent, checked line by line against the app's writer."""
    perf = body["perf"]
    lines = perf.split("\n")
    assert lines[0] == HEADER_LINE and lines[-1] == "", "header line and a final newline, as the app writes"
    for line in lines[1:-1]:
        assert ROW.fullmatch(line), f"not the app's '%f, %f, %f, %f, %d' row: {line!r}"
    rows = [tuple(float(v) for v in line.split(", ")) for line in lines[1:-1]]
    rows = [(t, x, y, z, int(m)) for t, x, y, z, m in rows]
    assert app_csv(rows) == perf, "the app's own formatting of these values gives the same text"
    return rows


def schema_options() -> dict:
    from service.openapi import document

    return document()["components"]["schemas"]["PredictRequest"]["properties"]


# ---- play, jam, hear --------------------------------------------------------------------------------------


def test_mouse_strokes_jam_and_the_reply_is_parsed_drawn_and_heard(server, browser, tmp_path):
    page = browser(**DESKTOP).open(server.url)
    assert page.page.get_attribute("#sound", "data-audio") == "off", "no audio before a user gesture"
    assert page.pixels() == 0
    swipe = [(0.15 + 0.5 * i / 20, 0.25 + 0.3 * i / 20) for i in range(21)]
    tap = [(0.8, 0.2)]
    arc = [(0.3 + 0.4 * i / 20, 0.8 - 0.25 * np.sin(np.pi * i / 20)) for i in range(21)]
    for stroke in (swipe, tap, arc):
        page.mouse_stroke(stroke)
        page.page.wait_for_timeout(150)

    body, response = page.jam()
    props = schema_options()
    assert set(body) == {"perf", "temperature", "sigma_temperature", "seconds"}
    assert {k: body[k] for k in ("temperature", "sigma_temperature", "seconds")} == {
        k: props[k]["default"] for k in ("temperature", "sigma_temperature", "seconds")
    }
    rows = sent_rows(body)
    assert len(rows) >= 20
    assert rows[0][0] == 0.0, "time counts from the first touch"
    times = [r[0] for r in rows]
    assert times == sorted(times) and times[-1] <= 5.0
    downs = [i for i, r in enumerate(rows) if r[4] == 0]
    assert len(downs) == 3 and downs[0] == 0, "moving is 0 on each pointer down, 1 on every move"
    for index, stroke in zip(downs, (swipe, tap, arc), strict=True):
        assert abs(rows[index][1] - stroke[0][0]) < 0.01 and abs(rows[index][2] - stroke[0][1]) < 0.01
    assert abs(rows[downs[1] - 1][1] - swipe[-1][0]) < 0.01, "x, y divided by the pad's side"
    assert abs(rows[-1][1] - arc[-1][0]) < 0.01 and abs(rows[-1][2] - arc[-1][1]) < 0.01
    assert {r[3] for r in rows} == {20.0}, "a mouse has no contact size: constant z"

    assert response.status == 200
    reply = response.json()["response"]
    touches = check_reply(reply, seconds=5.0)
    page.page.wait_for_selector("#status[data-reply-touches]")
    assert int(page.page.get_attribute("#status", "data-reply-touches")) == len(touches) > 0
    page.wait_reply_drawn()
    assert re.fullmatch(r"Round trip: \d+ ms\.", page.page.inner_text("#rtt"))
    page.page.wait_for_function("() => Number(document.getElementById('sound').dataset.voices) >= 2")
    assert page.page.get_attribute("#sound", "data-audio") == "running"
    layers = page.page.locator("#layers li")
    assert layers.count() == 2
    assert f"RoboJam: {len(touches)} touches" in layers.nth(1).inner_text()
    page.page.wait_for_function("() => document.getElementById('pad').dataset.playing === 'false'", timeout=20_000)
    page.shot(tmp_path / "desktop.png")
    assert page.problems == []


def test_the_page_csv_module_writes_and_reads_as_the_app_does(server, browser):
    """static/csv.js against the app's writer and reader (tests/support/microjam.py) on awkward values."""
    page = browser(**DESKTOP).open(server.url)
    rng = np.random.default_rng(5)
    raw = [(0.0, 0.0, 1.0, 20.0, 0), (0.0078125, 1 / 3, 2 / 3, 11.5, 1), (4.9999996, 0.1234565, 0.5, 38.0, 1)]
    raw += [
        (float(t), float(x), float(y), float(z), int(m)) for t, x, y, z, m in rng.random((40, 5)) * [5, 1, 1, 40, 2]
    ]
    reply = requests.post(server.url + "/api/predict", json={"perf": app_csv(raw)}, timeout=60).json()["response"]
    written, kept, read = page.page.evaluate(
        """async ([rows, reply]) => {
            const csv = await import('/static/csv.js');
            const kept = rows.map(([t, x, y, z, m]) => csv.touch(t, x, y, z, m));
            return [csv.toMicroJamCSV(kept), kept, csv.parseMicroJamCSV(reply)];
        }""",
        [raw, reply],
    )
    kept = [(r["time"], r["x"], r["y"], r["z"], r["moving"]) for r in kept]
    for row, held in zip(raw, kept, strict=True):
        assert all(abs(a - b) <= 5e-7 + 1e-12 for a, b in zip(row, held, strict=True)), (row, held)
    assert written == app_csv(kept), "the page writes what the app's own format string writes"
    app_reads = [(t.time, t.x, t.y, t.z, int(t.mov)) for t in parse_app_csv(reply)]
    assert [(r["time"], r["x"], r["y"], r["z"], r["moving"]) for r in read] == app_reads
    assert len(app_reads) > 0


def test_reply_plays_in_real_time_while_the_user_keeps_playing(server, browser):
    page = browser(**DESKTOP).open(server.url)
    page.page.focus("#seconds")
    page.page.keyboard.press("End")  # the longest reply the API allows: plenty of time to play over it
    page.mouse_stroke([(0.5, 0.5), (0.6, 0.5), (0.7, 0.5)])
    body, _ = page.jam()
    assert body["seconds"] == schema_options()["seconds"]["maximum"]
    page.wait_reply_drawn(minimum=1)
    drawn_early = page.pixels()
    page.mouse_stroke([(0.1, 0.9), (0.2, 0.85), (0.3, 0.9)])  # the user plays over the reply
    assert page.page.get_attribute("#pad", "data-playing") == "true", "the reply is still playing"
    assert page.pixels("--user") > 0, "the user's new stroke is drawn while the reply plays"
    page.page.wait_for_function("() => document.getElementById('pad').dataset.playing === 'false'", timeout=30_000)
    assert page.pixels() > drawn_early, "the reply's trail grew as it played"
    assert page.problems == []


def test_auto_mode_sends_after_a_pause_without_a_click(server, browser):
    page = browser(**DESKTOP).open(server.url)
    page.page.check("#auto")
    page.mouse_stroke([(0.3, 0.3), (0.4, 0.4), (0.5, 0.5)], release=False)
    page.page.wait_for_timeout(1200)  # holding the pointer down is not a pause
    assert not any(url.endswith("/api/predict") for url in page.requests)
    with page.page.expect_response("**/api/predict") as info:
        page.page.mouse.up()
    assert info.value.status == 200
    rows = sent_rows(info.value.request.post_data_json)
    assert len(rows) >= 3 and rows[0][4] == 0
    page.wait_reply_drawn()
    assert page.problems == []


def test_auto_mode_switched_off_during_the_pause_sends_nothing(server, browser):
    page = browser(**DESKTOP).open(server.url)
    page.page.check("#auto")
    page.mouse_stroke([(0.3, 0.3), (0.4, 0.4), (0.5, 0.5)], release=False)
    # The pointer is lifted and Auto unchecked in the same task, well inside the 600 ms pause. (The mouse's own
    # later pointerup finds no pointer down and does nothing.)
    page.page.evaluate(
        """() => {
            const pad = document.getElementById('pad');
            pad.dispatchEvent(new PointerEvent('pointerup', { pointerId: 1, pointerType: 'mouse', bubbles: true }));
            document.getElementById('auto').click();
        }"""
    )
    assert not page.page.is_checked("#auto")
    page.page.wait_for_timeout(3 * 600)
    page.page.mouse.up()
    assert not any(url.endswith("/api/predict") for url in page.requests), "sent although Auto was switched off"
    assert page.page.locator("#layers li.layer-you").count() == 0
    body, response = page.jam()  # the recording is still there for Jam
    assert len(sent_rows(body)) >= 3 and response.status == 200
    assert page.problems == []


def test_auto_mode_sends_at_once_when_the_5_s_are_up(server, browser):
    page = browser(**DESKTOP).open(server.url)
    page.page.check("#auto")
    page.mouse_stroke([(0.2, 0.2), (0.25, 0.2)], release=False)
    with page.page.expect_response("**/api/predict", timeout=TIMEOUT_MS) as info:
        for i in range(400):  # keep moving with the pointer down until the page sends by itself
            page.page.mouse.move(*page.at(0.2 + 0.6 * (i % 20) / 20, 0.2 + 0.6 * i / 400))
            page.page.wait_for_timeout(25)
            if any(url.endswith("/api/predict") for url in page.requests):
                break
    # Sent while the pointer is still down; its further moves do not start the next recording.
    page.page.mouse.move(*page.at(0.5, 0.5))
    assert page.page.inner_text("#countdown") == "Touch the square to play (up to 5 s)."
    rows = sent_rows(info.value.request.post_data_json)
    assert rows[-1][0] <= 5.0 and rows[-1][0] > 4.0, "a full 5 s recording, cut at 5 s"
    page.page.mouse.up()
    assert page.problems == []


def test_continue_sends_the_previous_reply_and_layers_download_as_csv(server, browser, tmp_path):
    page = browser(**DESKTOP).open(server.url)
    page.mouse_stroke([(0.7, 0.2), (0.6, 0.3), (0.5, 0.4), (0.4, 0.5)])
    _, first = page.jam()
    first_reply = first.json()["response"]
    page.page.wait_for_selector("#continue:not([disabled])")
    body, second = page.jam("#continue")
    assert body["perf"] == first_reply, "Continue sends RoboJam's previous reply as the next call"
    assert second.status == 200
    check_reply(second.json()["response"], seconds=5.0)
    page.page.wait_for_function("() => document.querySelectorAll('#layers li').length === 3")

    for index, text in ((1, first_reply), (2, second.json()["response"])):
        with page.page.expect_download() as info:
            page.page.locator("#layers li").nth(index).locator("a").click()
        saved = tmp_path / info.value.suggested_filename
        info.value.save_as(saved)
        touches = parse_app_csv(text)
        expected = app_csv([(t.time, t.x, t.y, t.z, int(t.mov)) for t in touches])
        assert saved.read_text() == expected, "each layer downloads in the app's own CSV format"
        assert saved.name == f"robojam-layer-{index + 1}-robojam.csv"
    assert page.problems == []


def test_clear_drops_a_reply_still_on_its_way_and_a_queued_send(server, browser):
    page = browser(**DESKTOP).open(server.url)
    held = []  # every /api/predict request, held until the test lets it through
    page.page.route("**/api/predict", lambda route: held.append(route))

    def wait_held(count: int) -> None:
        for _ in range(200):
            if len(held) >= count:
                return
            page.page.wait_for_timeout(50)
        raise AssertionError(f"{len(held)} requests held, expected {count}")

    page.page.check("#auto")
    page.mouse_stroke([(0.2, 0.2), (0.3, 0.3)])
    wait_held(1)  # auto sent the first stroke
    page.mouse_stroke([(0.7, 0.7), (0.8, 0.8)])  # played while the first call is out: queued behind it
    page.page.wait_for_function("() => document.querySelectorAll('#layers li.layer-you').length === 2")
    page.page.click("#clear")
    with page.page.expect_response("**/api/predict"):
        held[0].continue_()  # the reply to a call made before Clear arrives after it

    page.page.uncheck("#auto")
    page.mouse_stroke([(0.5, 0.9), (0.55, 0.85), (0.6, 0.9)])
    page.page.click("#jam")
    wait_held(2)
    rows = sent_rows(held[1].request.post_data_json)
    assert abs(rows[0][1] - 0.5) < 0.01 and abs(rows[0][2] - 0.9) < 0.01, "the next call is the new stroke"
    with page.page.expect_response("**/api/predict"):
        held[1].continue_()
    page.page.wait_for_selector("#status[data-reply-touches]")
    page.page.wait_for_timeout(2 * 600)  # past the auto pause: nothing queued before Clear goes out now
    assert len(held) == 2
    layers = page.page.locator("#layers li")
    assert [layers.nth(i).get_attribute("class") for i in range(layers.count())] == ["layer-you", "layer-robojam"]
    assert page.problems == []


def test_phone_viewport_fits_and_a_touch_stroke_records_and_jams(server, browser, tmp_path):
    page = browser(**PHONE).open(server.url)
    width = page.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width} px wide on a 360 px screen"
    for selector in ("#pad", "#jam", "#continue", "#auto", "#temperature", "#model"):
        box = page.page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360, f"{selector} does not fit: {box}"
    assert page.page.evaluate("getComputedStyle(document.getElementById('pad')).touchAction") == "none"

    cdp = page.page.context.new_cdp_session(page.page)
    radius = 11

    def touch(kind: str, fx: float, fy: float) -> None:
        x, y = page.at(fx, fy)
        point = {"x": x, "y": y, "radiusX": radius, "radiusY": radius, "force": 0.5, "id": 1}
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [point] if kind != "touchEnd" else []})

    touch("touchStart", 0.2, 0.8)
    for i in range(1, 16):
        page.page.wait_for_timeout(20)
        touch("touchMove", 0.2 + 0.04 * i, 0.8 - 0.04 * i)
    touch("touchEnd", 0, 0)
    with page.page.expect_response("**/api/predict") as info:
        page.page.tap("#jam")
    rows = sent_rows(info.value.request.post_data_json)
    assert len(rows) >= 10 and rows[0][4] == 0 and all(r[4] == 1 for r in rows[1:])
    assert abs(rows[0][1] - 0.2) < 0.02 and abs(rows[-1][2] - 0.2) < 0.02
    assert {r[3] for r in rows} == {float(radius)}, "z is the touch's contact radius"
    assert info.value.status == 200
    page.wait_reply_drawn()
    page.shot(tmp_path / "phone.png")
    assert page.problems == []


def test_a_phone_held_sideways_sees_the_whole_pad(server, browser):
    """740 x 360: the pad is no taller than the screen, so all of it can be played without scrolling mid-stroke
    (the pad itself cannot scroll the page: touch-action none)."""
    page = browser(**{**PHONE, "viewport": {"width": 740, "height": 360}}).open(server.url)
    pad = page.page.locator("#pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box["width"] == pytest.approx(box["height"], abs=1), "still a square"
    assert box["y"] >= -1 and box["y"] + box["height"] <= 360 + 1, f"the pad does not fit on the screen: {box}"
    meter = page.page.locator(".meter").bounding_box()
    assert meter["width"] == pytest.approx(box["width"], abs=1), "the countdown bar stays as wide as the pad"


def test_sliders_take_their_ranges_from_the_api(server, browser):
    page = browser(**DESKTOP).open(server.url)
    props = schema_options()
    for name in ("temperature", "sigma_temperature", "seconds"):
        slider = page.page.locator(f"#{name}")
        assert float(slider.get_attribute("data-max")) == props[name]["maximum"]
        assert float(slider.get_attribute("data-value")) == props[name]["default"]
        slider.focus()
        page.page.keyboard.press("End")
        assert float(slider.get_attribute("data-value")) == props[name]["maximum"]
        page.page.keyboard.press("Home")
        assert float(slider.get_attribute("data-value")) > props[name]["exclusiveMinimum"]
    page.mouse_stroke([(0.5, 0.5), (0.55, 0.5)])
    body, response = page.jam()
    assert all(body[name] > props[name]["exclusiveMinimum"] for name in ("temperature", "sigma_temperature"))
    assert response.status == 200, response.text()
    check_reply(response.json()["response"], seconds=body["seconds"])


def test_a_seed_makes_the_reply_reproducible_and_a_too_long_one_is_refused(server, browser):
    page = browser(**DESKTOP).open(server.url)
    page.page.fill("#seed", "42")
    page.mouse_stroke([(0.3, 0.6), (0.4, 0.5), (0.5, 0.4)])
    body, response = page.jam()
    assert body["seed"] == 42
    again = requests.post(server.url + "/api/predict", json=body, timeout=60)
    assert again.json()["response"] == response.json()["response"], "same seed, same performance: same reply"

    page.page.fill("#seed", "18446744073709551615")  # the API's maximum, beyond what a JS number holds exactly
    page.page.click("#continue")
    assert page.error().startswith("The seed must be a whole number from 0 to 9007199254740991")
    assert sum(url.endswith("/api/predict") for url in page.requests) == 1, "nothing sent with a rounded seed"


# ---- errors -------------------------------------------------------------------------------------------------


def test_empty_recording_shows_the_api_error_sentence(server, browser):
    page = browser(**DESKTOP).open(server.url)
    body, response = page.jam()
    assert body["perf"] == HEADER_LINE + "\n"
    assert response.status == 400
    sentence = response.json()["error"]
    text = page.error()
    assert text.startswith("Nothing recorded yet") and text.endswith(sentence)
    assert page.page.inner_text("#status") == "No reply."


def test_too_many_rows_and_a_stopped_server_each_show_a_clear_error(browser, tmp_path):
    env = {"ROBOJAM_WEIGHTS": str(SHIPPED_WEIGHTS), "ROBOJAM_WORKERS": "1", "ROBOJAM_MAX_ROWS": "5"}
    with GunicornProcess(tmp_path / "gunicorn.log", env=env) as srv:
        srv.wait_ready()
        page = browser(**DESKTOP).open(srv.url)
        page.mouse_stroke([(0.1 + 0.05 * i, 0.5) for i in range(12)])
        _, response = page.jam()
        assert response.status == 413
        assert page.error() == f"The performance is too large (HTTP 413): {response.json()['error']}"
        page.mouse_stroke([(0.5, 0.5), (0.6, 0.6)])
        srv.stop()
        page.page.click("#jam")
        text = page.page.wait_for_function(
            "() => { const e = document.getElementById('error'); return e.textContent.includes('reach') && e; }"
        )
        assert text
        assert page.page.inner_text("#error").startswith("Cannot reach the RoboJam service at http://127.0.0.1:")
        assert page.page.inner_text("#status") == "No reply."
        page.shot(tmp_path / "server-down.png")


@pytest.mark.parametrize(
    ("status", "body", "shown"),
    [
        (503, {"error": "the server is at capacity; retry in a moment."}, "RoboJam is busy right now (HTTP 503): "),
        (502, "<html>Bad Gateway</html>", "The service answered with an error (HTTP 502) without an error message"),
    ],
    ids=["503-json", "502-html-from-a-proxy"],
)
def test_an_overloaded_or_proxied_error_is_shown(server, browser, status, body, shown):
    """Answers the service itself cannot be made to give here (overload, a proxy's HTML page)."""
    page = browser(**DESKTOP).open(server.url)
    payload = json.dumps(body) if isinstance(body, dict) else body
    kind = "application/json" if isinstance(body, dict) else "text/html"
    page.page.route("**/api/predict", lambda route: route.fulfill(status=status, body=payload, content_type=kind))
    page.mouse_stroke([(0.5, 0.5), (0.6, 0.6)])
    page.page.click("#jam")
    text = page.error()
    assert text.startswith(shown)
    if isinstance(body, dict):
        assert text.endswith(body["error"])


# ---- what is served, and from where ------------------------------------------------------------------------


def test_api_model_matches_the_served_artifact_and_the_footer_shows_it(server, browser):
    info = requests.get(server.url + "/api/model", timeout=10).json()
    with np.load(SHIPPED_WEIGHTS) as archive:
        metadata = json.loads(str(archive["metadata"]))
        parameters = sum(archive[key].size for key in archive.files if key != "metadata")
    assert info["sha256"] == hashlib.sha256(SHIPPED_WEIGHTS.read_bytes()).hexdigest()
    assert (info["units"], info["layers"], info["mixtures"]) == (
        metadata["units"],
        metadata["layers"],
        metadata["mixtures"],
    )
    assert info["parameters"] == parameters and info["val_nll"] == pytest.approx(metadata["val_nll"])

    page = browser(**DESKTOP).open(server.url)
    footer = page.page.locator("#model")
    assert footer.get_attribute("data-sha256") == info["sha256"]
    text = footer.inner_text()
    assert f"{info['layers']} × {info['units']} LSTM, {info['mixtures']} mixtures" in text
    assert f"{info['parameters']:,} parameters" in text and f"{info['val_nll']:.3f}" in text
    assert info["sha256"] in text


def test_csp_and_nosniff_and_nothing_loaded_from_elsewhere(server, browser):
    page_response = requests.get(server.url + "/", timeout=10)
    csp = page_response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "default-src 'none'" in csp
    assert page_response.headers["X-Content-Type-Options"] == "nosniff"
    assert requests.get(server.url + "/static/app.js", timeout=10).headers["X-Content-Type-Options"] == "nosniff"

    page = browser(**DESKTOP).open(server.url)
    page.mouse_stroke([(0.4, 0.4), (0.5, 0.5)])
    page.jam()
    page.wait_reply_drawn()
    assert page.requests, "the page made requests"
    foreign = [url for url in page.requests if not url.startswith(server.url + "/")]
    assert foreign == [], f"requests to other origins: {foreign}"
    loaded = {url.removeprefix(server.url) for url in page.requests}
    assert {"/", "/static/app.js", "/static/style.css", "/openapi.json", "/api/model", "/api/predict"} <= loaded
    # A violation of the policy would be reported on the console; a blocked script would leave the page dead.
    assert page.problems == []
    blocked = page.page.evaluate(
        """async () => { try { await fetch('http://example.invalid/'); return 'fetched'; }
                         catch (e) { return 'blocked'; } }"""
    )
    assert blocked == "blocked"
    assert any("Content Security Policy" in problem for problem in page.problems), page.problems
