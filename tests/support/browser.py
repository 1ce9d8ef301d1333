"""Headless Chromium for tests (pytest plugin: ``support.browser``): Debian's chromium driven by
selenium through Debian's matching chromedriver. Nothing is downloaded; a missing browser fails
the test (``make test`` installs it: scripts/ensure-chromium.sh).

    def test_x(browser):                       # one browser per test module
        browser.get(url)
        wait_for(browser, "document.body.dataset.rendered === '1'")
        shot(browser, "name")                  # PNG under the session's screenshot folder

Screenshots go to $HANDOFF_SCREENSHOTS (docs/ui.md's pictures are refreshed from there), else to
a temporary folder; the path is printed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1")
_SHOTS = Path(os.environ.get("HANDOFF_SCREENSHOTS") or tempfile.mkdtemp(prefix="handoff-screenshots-"))


def start_browser(width: int = 1400, height: int = 1000) -> Any:
    """A new headless Chromium (fresh profile) under selenium; fails when Chromium is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run scripts/ensure-chromium.sh (make test does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="handoff-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver._handoff_profile = profile  # removed by stop_browser
    return driver


def stop_browser(driver: Any) -> None:
    profile = getattr(driver, "_handoff_profile", None)
    try:
        driver.quit()
    finally:
        if profile:
            shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: Any, condition_js: str, timeout: float = 30.0) -> Any:
    """Wait until the JavaScript expression is truthy; returns its value (fails with the page's title and text)."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return ({condition_js});")
        if value:
            return value
        if time.monotonic() > deadline:
            text = driver.execute_script("return document.body ? document.body.innerText.slice(0, 800) : ''")
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {condition_js} on {driver.current_url} "
                                 f"({driver.title!r}): {text}")
        time.sleep(0.1)


def shot(driver: Any, name: str) -> Path:
    """Save a PNG of the window as ``<screenshots>/<name>.png``; returns its path."""
    _SHOTS.mkdir(parents=True, exist_ok=True)
    path = _SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def texts(driver: Any, css: str) -> list[str]:
    """The visible text of every element matching ``css``."""
    return list(driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText.trim());", css))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = start_browser()
    try:
        yield driver
    finally:
        stop_browser(driver)
