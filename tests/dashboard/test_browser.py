"""The dashboard in a real browser: Debian's headless Chromium, driven by Selenium through
chromedriver, opens the pages of a real `edge-asc listen --http` replaying real shared clips in
real time, sees the live label follow the clips (with no reload), sees the events table fill
as the events end, and saves the screenshots the README shows (docs/images/)."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest
from conftest import dashboard_port
from listener import Listener

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
BROWSER_WAIT_S = 40  # the 24-s replay in real time, with room for a busy 2-core machine


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip(
            "Chromium is not installed; apt-get install chromium chromium-driver (.ci/run does)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1100,760",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_until(condition, timeout: float, what: str, driver):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; page: {driver.page_source[:3000]}")
        time.sleep(0.1)


def text_of(driver, element_id: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return driver.find_element("id", element_id).text
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def test_live_label_events_table_and_screenshots(browser, sequence, tmp_path, labels):
    listener = Listener(
        tmp_path,
        "listen", "--from-file", str(sequence), "--display", "none",
        "--http", "127.0.0.1:0", "--db", str(tmp_path / "history.db"), "--clips",
    )  # fmt: skip
    try:
        port = dashboard_port(listener)
        base = f"http://127.0.0.1:{port}"
        browser.get(base + "/")
        # The label follows the clips as they play: the first clip's class, then the second's,
        # on the same page (the live feed, no reload: the marker set below would be gone).
        browser.execute_script("window.notReloaded = true")
        wait_until(lambda: text_of(browser, "label") == labels[0], 20, labels[0], browser)
        seen = wait_until(
            lambda: text_of(browser, "label") == labels[1], BROWSER_WAIT_S, labels[1], browser
        )
        assert seen and browser.execute_script("return window.notReloaded === true")
        assert text_of(browser, "status") == "live"
        assert labels[1] in text_of(browser, "bars")
        IMAGES.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(IMAGES / "dashboard-now.png"))

        # The events page: the table fills, first from /api/events, then from the live feed.
        browser.get(base + "/events")
        rows = lambda: browser.find_elements("css selector", "#events tbody tr")  # noqa: E731
        wait_until(lambda: len(rows()) >= 1, 20, "a first event row", browser)
        first = len(rows())
        wait_until(lambda: len(rows()) > first, BROWSER_WAIT_S, "a row added live", browser)
        shown = [row.find_elements("css selector", "td")[1].text for row in rows()]
        assert shown[::-1] == labels[: len(shown)]  # newest first, in the order played
        assert browser.find_elements("css selector", "#events audio")  # --clips: a player
        browser.save_screenshot(str(IMAGES / "dashboard-events.png"))
        assert listener.stop(signal.SIGTERM) == 0
    finally:
        listener.kill()
    assert "Traceback" not in listener.stderr


def test_serve_shows_today_and_the_model_card(browser, history, tmp_path, labels, model):
    """`edge-asc serve` over a history of the replayed clips: the timeline and the hour counts,
    the model card, and a now page that says there is no live audio."""
    server = Listener(tmp_path, "serve", "--db", str(history), "--http", "127.0.0.1:0")
    try:
        base = f"http://127.0.0.1:{dashboard_port(server)}"
        browser.get(base + "/today")
        loaded = (
            "const i = document.getElementById('timeline'); return i.complete && i.naturalWidth"
        )
        wait_until(lambda: browser.execute_script(loaded), 20, "the timeline", browser)
        heads = lambda: [h.text for h in browser.find_elements("css selector", "#hours th")]  # noqa: E731
        wait_until(lambda: len(heads()) > 1, 20, "the hour counts", browser)
        assert sorted(heads()[1:]) == sorted(labels)
        browser.save_screenshot(str(IMAGES / "dashboard-today.png"))

        browser.get(base + "/model")
        wait_until(lambda: model.id in text_of(browser, "card"), 20, "the model card", browser)
        assert all(label in text_of(browser, "card") for label in model.labels)

        browser.get(base + "/")
        assert "no live audio" in text_of(browser, "status")
        assert server.stop(signal.SIGTERM) == 0
    finally:
        server.kill()
    assert "Traceback" not in server.stderr
