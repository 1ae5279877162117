"""The static site in a real browser (headless Chromium): content, JS, and hostile history."""

from __future__ import annotations

import copy
import html.parser
import json
import pathlib
import re
import shutil
import subprocess

import pytest

from reporter import site, times
from reporter.atomic_dir import write_tree
from reporter.fold import fold, image_records
from reporter.outputs import history_block, latest
from tests.conftest import SAMPLES
from tests.reporter.histories import OUR_NAME, SHA_Q, as_rows, mixed_history

CHROMIUM = "/usr/bin/chromium"
EVIL_SCRIPT = "<script>document.documentElement.setAttribute('data-pwned','script')</script>"
EVIL_IMG = "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','img')\">"
EVIL_ATTR = "\" onmouseover=\"alert(1)\" data-x=\""


def _chromium(tmp: pathlib.Path, page: pathlib.Path, *mode: str) -> subprocess.CompletedProcess:
    assert shutil.which(CHROMIUM), "Debian chromium must be installed (deploy/local)"
    profile = tmp / f"chromium-profile-{len(list(tmp.iterdir()))}"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,2000",
         "--virtual-time-budget=3000", *mode, page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )


class _Elements(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _elements(dom: str) -> list[tuple[str, dict]]:
    parser = _Elements()
    parser.feed(dom)
    return parser.tags


def _hostile(images: list[dict]) -> list[dict]:
    """Every string an attacker could put into history, made hostile (after the fold, so the
    escaping itself is tested, not only the validation in families.py)."""
    out = copy.deepcopy(images)
    for img in out:
        if img["name"] == OUR_NAME:
            img["name"] = OUR_NAME + EVIL_SCRIPT
            img["promoted"]["note"] = EVIL_IMG
            img["promoted"]["agent"] = EVIL_ATTR
            img["failures"][0]["error"] = EVIL_SCRIPT
            img["qe"]["suites"] = {EVIL_IMG: {**img["qe"]["suites"]["openqa-cloud"],
                                              "note": EVIL_SCRIPT}}
            img["compose_id"] = EVIL_ATTR
            img["cloud"] = EVIL_IMG
        if img["gcp"]:
            img["gcp"]["image_name"] = EVIL_SCRIPT
            img["gcp"]["family"] = EVIL_ATTR
    return out


def _images() -> list[dict]:
    specs, _ = mixed_history(SAMPLES)
    return _hostile(image_records(fold(as_rows(specs))))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    specs, _ = mixed_history(SAMPLES)
    state = fold(as_rows(specs))
    images = _hostile(image_records(state))
    out = tmp_path_factory.mktemp("site")
    write_tree(out, site.render(images, history_block(state, "https://dg.example.org"),
                                "2026-11-25T12:00:00Z"))
    return out


@pytest.mark.parametrize("page", ["index.html", "release-41.html"])
def test_templates_autoescape_every_string(rendered, page):
    text = (rendered / page).read_text()
    assert EVIL_SCRIPT not in text and EVIL_IMG not in text
    assert "&lt;script&gt;document.documentElement" in text
    scripts = [a for t, a in _elements(text) if t == "script"]
    assert scripts == [{"src": "static/site.js"}]
    assert not [a for _, a in _elements(text) if "onerror" in a or "onmouseover" in a]


def _rows(dom: str) -> list[dict]:
    """The locator's body rows: their data-* attributes, and whether the row is hidden."""
    return [{**{k[5:]: v for k, v in a.items() if k.startswith("data-")}, "hidden": "hidden" in a}
            for t, a in _elements(dom) if t == "tr" and "data-ami" in a]


def test_locator_lists_every_current_image_in_every_region(rendered):
    text = (rendered / "index.html").read_text()
    rows = _rows(text)
    current = latest(_images(), by_cloud=True)
    want = sorted((i["name"], r, i["aws"][r]["ami"]) for i in current for r in i["aws"]) + \
        sorted((i["name"], "", "") for i in current if not i["aws"])
    got = sorted((r["name"], r["region"], r["ami"]) for r in rows if r["region"]) + \
        sorted((r["name"], r["region"], r["ami"]) for r in rows if not r["region"])
    assert got == want and len(rows) > 10
    assert not any(r["hidden"] for r in rows), "without JavaScript every row shows"
    form = next(a for t, a in _elements(text) if t == "form")
    assert "hidden" in form, "the filters do nothing without JavaScript, so they start hidden"
    for row in rows:
        if row["ami"]:
            launch = (f"https://console.aws.amazon.com/ec2/home?region={row['region']}"
                      f"#LaunchInstances:ami={row['ami']}")
            assert f'href="{launch}"' in text
            assert f'data-copy="{row["ami"]}"' in text
    assert "556.3 MiB" in text and SHA_Q in text  # the 41 release's qcow2: size and sha256
    # every filter box offers exactly the values of the rows
    selects = [a["name"] for t, a in _elements(text) if t == "select"]
    assert selects == list(site.FILTERS)
    regions = sorted({r["region"] for r in rows} - {""})
    assert re.search(r'<select name="region"[^>]*><option value="">all</option>' +
                     "".join(f'<option value="{r}">{r}</option>' for r in regions), text)


def test_times_are_shown_readable_with_the_iso_time_beside(rendered):
    for page in (rendered / "index.html", rendered / "release-41.html"):
        text = page.read_text()
        times = re.findall(r'<time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', text)
        assert len(times) > 3
        for iso, title, shown in times:
            assert iso == title and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", iso)
            assert shown == f"{iso[:10]} {iso[11:16]} UTC"
        visible = re.sub(r"<[^>]+>", " ", text)  # text outside tags and attributes
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", visible), "a raw ISO time is shown"


def test_readable_times():
    assert times.readable("2026-12-03T00:42:17Z") == "2026-12-03 00:42 UTC"
    assert times.readable(1_796_258_537.5) == "2026-12-03 00:42 UTC"
    assert times.readable("not a time") == "not a time"
    assert times.readable(None) == ""


@pytest.mark.slow
def test_index_in_headless_chromium(rendered, tmp_path):
    shot = tmp_path / "index.png"
    proc = _chromium(tmp_path, rendered / "index.html", f"--screenshot={shot}")
    assert shot.exists(), proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a real page, not blank

    dom = _chromium(tmp_path, rendered / "index.html", "--dump-dom").stdout
    tags = _elements(dom)
    html_attrs = next(a for t, a in tags if t == "html")
    assert html_attrs.get("data-js") == "ready", "site.js did not run"
    assert "data-pwned" not in html_attrs
    rows = _rows(dom)
    assert html_attrs["data-rows-shown"] == str(len(rows)) and len(rows) > 10
    assert "hidden" not in next(a for t, a in tags if t == "form"), "site.js shows the filters"
    assert [a for t, a in tags if t == "script"] == [{"src": "static/site.js"}]
    assert not [t for t, _ in tags if t == "img"]
    assert "★ official" in dom and "QE passed" in dom and "Release (official)" in dom
    assert "&lt;script&gt;document.documentElement" in dom  # shown as text, not run


@pytest.mark.slow
def test_release_page_in_headless_chromium(rendered, tmp_path):
    page = rendered / "release-40.html"
    dom = _chromium(tmp_path, page, "--dump-dom").stdout
    tags = _elements(dom)
    assert next(a for t, a in tags if t == "html").get("data-js") == "ready"
    names = [a["data-name"] for t, a in tags if t == "article"]
    assert "Fedora-Cloud-Base-AmazonEC2-40-20240501.n.0.aarch64" in names
    assert "Fedora-Cloud-Base-Azure-40-20240501.n.0.x86_64" in names
    assert all("-40-" in n for n in names)
    assert "Nightly" in dom and "Release candidates" in dom


def test_release_pages_exist_for_every_release(rendered):
    index = json.dumps(sorted(p.name for p in rendered.glob("release-*.html")))
    assert index == json.dumps(sorted(
        f"release-{r}.html" for r in ("24", "27", "40", "41", "Rawhide")))
