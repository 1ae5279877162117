"""The site in a real browser: Debian's headless Chromium driven by selenium through Debian's
chromedriver (same version; nothing is downloaded), the site served over HTTP on loopback.

What a person does with it: open a filtered link, copy an AMI, read it on a phone, look at it.
The 1280 px screenshot of the locator is kept in test-artifacts/ (gitignored) for people to look
at; its path is printed at the end of the run.
"""

from __future__ import annotations

import base64
import functools
import http.server
import pathlib
import threading
import urllib.parse

import pytest

from reporter import site
from reporter.outputs import latest
from tests.reporter.conftest import EVIL_SCRIPT, FAMILY, OLDER, artifact

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def served(rendered):
    """The rendered site over HTTP on 127.0.0.1 (a secure context, as https would be)."""
    handler = functools.partial(_QuietHandler, directory=str(rendered))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        assert pathlib.Path(path).exists(), f"{path} is missing: run deploy/local/ensure-system.sh"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--hide-scrollbars", "--window-size=1280,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(20)
    yield driver
    driver.quit()


def _viewport(driver, width: int, height: int, mobile: bool = False) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


def _open(driver, url: str) -> None:
    driver.get(url)
    driver.execute_script("return document.readyState")  # get() waited for the load event
    assert driver.find_element("css selector", "html").get_attribute("data-js") == "ready"


def _visible_rows(driver) -> list[dict]:
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('#locator tbody tr'))
          .filter(r => r.offsetParent !== null)
          .map(r => ({name: r.dataset.name, region: r.dataset.region, ami: r.dataset.ami,
                      release: r.dataset.release, date: r.dataset.date}));""")


def test_a_filtered_link_shows_exactly_the_matching_rows(browser, served, site_images):
    _viewport(browser, 1280, 1000)
    current = latest(site_images, by_cloud=True)
    want = sorted((i["name"], r) for i in current for r in i["aws"]
                  if i["release"] == "40" and i["arch"] == "x86_64" and i["channel"] == "nightly")
    assert want  # the family with AMIs in two regions

    _open(browser, f"{served}/index.html?release=40&arch=x86_64&channel=nightly&region=us-west-1")
    assert sorted((r["name"], r["region"]) for r in _visible_rows(browser)) == \
        [w for w in want if w[1] == "us-west-1"]
    _open(browser, f"{served}/index.html?release=40&arch=x86_64&channel=nightly")
    rows = _visible_rows(browser)
    assert sorted((r["name"], r["region"]) for r in rows if r["region"]) == want
    boxes = {name: browser.execute_script(
        f"return document.querySelector('select[name={name}]').value") for name in site.FILTERS}
    assert boxes == {"release": "40", "arch": "x86_64", "channel": "nightly", "region": "",
                     "subvariant": ""}

    # choosing in a box filters further and writes the box into the URL, to share it
    browser.execute_script("""
        const s = document.querySelector('select[name=region]');
        s.value = 'us-east-2'; s.dispatchEvent(new Event('change'));""")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(browser.current_url).query)
    assert query == {"release": ["40"], "arch": ["x86_64"], "channel": ["nightly"],
                     "region": ["us-east-2"]}
    assert [(r["name"], r["region"]) for r in _visible_rows(browser)] == \
        [w for w in want if w[1] == "us-east-2"]


def test_sorting_by_a_column_is_kept_in_the_url(browser, served):
    _viewport(browser, 1280, 1000)
    _open(browser, f"{served}/index.html")
    header = browser.find_element("css selector", 'th[data-sort="date"] button.sort')
    header.click()
    dates = [r["date"] for r in _visible_rows(browser)]
    assert dates == sorted(dates) and len(set(dates)) > 3
    header.click()
    dates = [r["date"] for r in _visible_rows(browser)]
    assert dates == sorted(dates, reverse=True)
    assert "sort=date&order=desc" in browser.current_url
    _open(browser, browser.current_url)  # the shared link gives the same order
    assert [r["date"] for r in _visible_rows(browser)] == dates
    assert browser.find_element("css selector", 'th[data-sort="date"]').get_attribute(
        "aria-sort") == "descending"


def test_a_copy_button_puts_the_ami_on_the_clipboard(browser, served):
    _viewport(browser, 1280, 1000)
    browser.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": served, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    _open(browser, f"{served}/index.html?region=eu-west-1")
    rows = _visible_rows(browser)
    assert rows and all(r["region"] == "eu-west-1" for r in rows)
    button = browser.find_element(
        "css selector", f'#locator tbody tr[data-ami="{rows[0]["ami"]}"] button.copy')
    button.click()
    copied = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        navigator.clipboard.readText().then(done, e => done('clipboard error: ' + e));""")
    assert copied == rows[0]["ami"]
    assert button.text == "copied"


@pytest.mark.parametrize("page", ["index.html", "release-40.html", FAMILY])
def test_pages_are_readable_375_px_wide_without_sideways_scrolling(browser, served, page):
    _viewport(browser, 375, 812, mobile=True)
    try:
        _open(browser, f"{served}/{page}")
        width = browser.execute_script("return document.documentElement.clientWidth")
        scroll = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 375 and scroll <= width, f"{page} scrolls sideways: {scroll} > {width}"
        # the text people came for is inside the screen and not shrunk to nothing
        first = browser.find_element("css selector", "code.ami")
        box = browser.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.left, r.right];", first)
        assert box[0] >= 0 and box[1] <= width, (page, box)
        size = browser.execute_script(
            "return parseFloat(getComputedStyle(arguments[0]).fontSize)", first)
        assert size >= 11
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_without_javascript_every_row_shows_and_the_dead_filters_hide(browser, served):
    _viewport(browser, 1280, 1000)
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        browser.get(f"{served}/index.html?release=40")
        assert browser.find_element("css selector", "html").get_attribute("data-js") is None
        rows = browser.find_elements("css selector", "#locator tbody tr")
        assert len(rows) > 10 and all(r.is_displayed() for r in rows)
        assert not browser.find_element("css selector", "form#filters").is_displayed()
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})


def test_hostile_history_runs_no_script_and_history_links_land_on_the_image(browser, served):
    _viewport(browser, 1280, 1000)
    _open(browser, f"{served}/index.html")
    assert browser.find_element("css selector", "html").get_attribute("data-pwned") is None
    assert EVIL_SCRIPT in browser.find_element("css selector", "#locator").text
    # the locator shows only the current image of a family...
    assert not browser.find_elements("css selector", f'a[href="{FAMILY}#{OLDER}"]')
    _open(browser, f"{served}/{FAMILY}#{OLDER}")  # ...its history page every earlier one
    card = browser.find_element("css selector", f'article[id="{OLDER}"]')
    assert card.is_displayed() and "eu-central-1" in card.text


def test_the_locator_at_1280_px_is_kept_as_a_screenshot(browser, served):
    _viewport(browser, 1280, 1000)
    _open(browser, f"{served}/index.html")
    # every column is on the screen: the table fits its box, nothing scrolls sideways in it
    inner, box = browser.execute_script("""
        const wrap = document.getElementById('locator').parentElement;
        return [wrap.scrollWidth, wrap.clientWidth];""")
    assert inner <= box, f"the locator is {inner} px wide in a {box} px box"
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True})
    data = base64.b64decode(shot["data"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a real page, not blank
    width = int.from_bytes(data[16:20], "big")
    assert width == 1280
    artifact("locator-1280.png", data)
