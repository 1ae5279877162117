"""The static site in a real browser (headless Chromium): content, JS, and hostile history."""

from __future__ import annotations

import copy
import html.parser
import json
import pathlib
import shutil
import subprocess

import pytest

from reporter import site
from reporter.atomic_dir import write_tree
from reporter.fold import fold, image_records
from reporter.outputs import history_block
from tests.reporter.histories import OUR_NAME, as_rows, mixed_history

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
    escaping itself is tested, not only the validation in families.py). Names stay: one that
    is no image name is never a current image (outputs.reads_as_image_name), and the fold
    refuses such names anyway (test_poison.py)."""
    out = copy.deepcopy(images)
    for img in out:
        if img["name"] == OUR_NAME:
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


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, samples_dir_module):
    specs, _ = mixed_history(samples_dir_module)
    state = fold(as_rows(specs))
    images = _hostile(image_records(state))
    out = tmp_path_factory.mktemp("site")
    write_tree(out, site.render(images, history_block(state, "https://dg.example.org"),
                                "2026-11-25T12:00:00Z"))
    return out


@pytest.fixture(scope="module")
def samples_dir_module():
    return pathlib.Path(__file__).resolve().parents[1] / "data" / "samples"


def test_templates_autoescape_every_string(rendered):
    text = (rendered / "index.html").read_text()
    assert EVIL_SCRIPT not in text and EVIL_IMG not in text
    assert "&lt;script&gt;document.documentElement" in text
    scripts = [a for t, a in _elements(text) if t == "script"]
    assert scripts == [{"src": "static/site.js"}]
    assert not [a for _, a in _elements(text) if "onerror" in a or "onmouseover" in a]


@pytest.mark.slow
def test_index_in_headless_chromium(rendered, tmp_path):
    shot = tmp_path / "index.png"
    proc = _chromium(tmp_path, rendered / "index.html", f"--screenshot={shot}")
    assert shot.exists(), proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a real page, not blank
    keep = pathlib.Path(__file__).resolve().parents[2] / "build"
    if keep.is_dir():  # `mkdir build` to keep the screenshot for a look
        shutil.copy(shot, keep / "report-index.png")

    dom = _chromium(tmp_path, rendered / "index.html", "--dump-dom").stdout
    tags = _elements(dom)
    html_attrs = next(a for t, a in tags if t == "html")
    assert html_attrs.get("data-js") == "ready", "site.js did not run"
    assert "data-pwned" not in html_attrs
    assert int(html_attrs["data-images"]) == len([t for t, _ in tags if t == "article"]) > 5
    assert [a for t, a in tags if t == "script"] == [{"src": "static/site.js"}]
    assert not [t for t, _ in tags if t == "img"]
    # the current images, grouped by release then channel, with their facts
    assert dom.index('id="release-Rawhide"') < dom.index('id="release-41"') < \
        dom.index('id="release-24"')
    launch = ("https://console.aws.amazon.com/ec2/home?region=us-east-1"
              "#LaunchInstances:ami=ami-0a1a3731a749a16db")
    assert launch.replace("&", "&amp;") in dom or launch in dom
    assert 'data-copy="ami-0a1a3731a749a16db"' in dom
    assert "★ official" in dom and "QE passed" in dom and "Release (official)" in dom
    assert "556.3 MiB" in dom  # qcow2 size 583335936
    assert "846574c8a97cd2d8dc1f231062d73107cc85cbbbda56335e264a46e3a6c8ab2f" in dom
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
