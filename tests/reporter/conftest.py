"""The rendered site every site, feed and browser test reads: the mixed history (all three
families, tests/reporter/histories.py) plus an earlier nightly of one family, with every string an
attacker could put into history made hostile after the fold (so the escaping itself is tested,
not only the validation in families.py)."""

from __future__ import annotations

import copy
import datetime as dt
import html.parser
import json
import pathlib

import pytest

from reporter import site
from reporter.atomic_dir import write_tree
from reporter.fold import fold, image_records
from reporter.outputs import dumps, history_block, latest_json
from tests.conftest import SAMPLES
from tests.reporter.histories import GENERIC_NAME, OUR_NAME, as_rows, mixed_history

EVIL_SCRIPT = "<script>document.documentElement.setAttribute('data-pwned','script')</script>"
EVIL_IMG = "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','img')\">"
EVIL_ATTR = "\" onmouseover=\"alert(1)\" data-x=\""
# the family with two images: the nightly of the mixed history and one a week earlier, which
# also reached eu-central-1 (a region the newer one did not get)
FAMILY = "history/40-Cloud_Base-x86_64-nightly.html"
NEWER = "Fedora-Cloud-Base-AmazonEC2-40-20240501.n.0.x86_64"
OLDER = "Fedora-Cloud-Base-AmazonEC2-40-20240424.n.0.x86_64"
OLDER_AMIS = {"us-east-2": "ami-0e1d2c3b4a5f60718", "eu-central-1": "ami-0f9e8d7c6b5a40312"}


def history_specs() -> list[tuple]:
    specs, _ = mixed_history(SAMPLES)
    newer = next(s for s in specs if s[0].endswith("published.v1.aws")
                 and s[1].get("compose_id") == "Fedora-40-20240501.n.0"
                 and s[1].get("architecture") == "x86_64")
    body = {**copy.deepcopy(newer[1]), "compose_id": "Fedora-40-20240424.n.0",
            "regions": OLDER_AMIS}
    return [(newer[0], body, newer[2] - dt.timedelta(days=7)), *specs]


def hostile(images: list[dict]) -> list[dict]:
    """Every string an attacker could put into history, made hostile after the fold, so the
    escaping itself is tested. Names stay: the fold refuses names that are no image names
    (test_poison.py), and such a name would never be a current image anyway."""
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
        if img["name"] == GENERIC_NAME:
            img["openstack"][EVIL_ATTR] = {"image_id": EVIL_IMG, "visibility": EVIL_SCRIPT}
        if img["gcp"]:
            img["gcp"]["image_name"] = EVIL_SCRIPT
            img["gcp"]["family"] = EVIL_ATTR
        if img["name"] == "Fedora-Container-Base-40-20240501.n.0.s390x":
            img["containers"][0]["tags"].append(EVIL_SCRIPT)
            img["containers"][0]["repository"] = EVIL_ATTR
    return out


class _Elements(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def elements(dom: str) -> list[tuple[str, dict]]:
    """(tag, attributes) of every start tag, in document order."""
    parser = _Elements()
    parser.feed(dom)
    return parser.tags


@pytest.fixture(scope="session")
def site_images() -> list[dict]:
    return hostile(image_records(fold(as_rows(history_specs()))))


@pytest.fixture(scope="session")
def rendered(tmp_path_factory, site_images) -> pathlib.Path:
    """The site as fedimg-report writes it (with latest.json beside it, as in a real run)."""
    state = fold(as_rows(history_specs()))
    out = tmp_path_factory.mktemp("site")
    files = site.render(site_images, history_block(state, "https://dg.example.org"),
                        "2026-11-25T12:00:00Z")
    files["latest.json"] = dumps(latest_json(site_images, state, "https://dg.example.org",
                                             "2026-11-25T12:00:00Z"))
    write_tree(out, files)
    assert json.loads(files["latest.json"])["latest"]
    return out


# ---- files the test run keeps for people to look at ----------------------------------------------

ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / "test-artifacts"
_kept: list[pathlib.Path] = []


def artifact(name: str, data: bytes) -> pathlib.Path:
    """Keep ``data`` as test-artifacts/NAME (gitignored); the path is printed after the run."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.write_bytes(data)
    _kept.append(path)
    return path


def pytest_terminal_summary(terminalreporter):
    for path in _kept:
        terminalreporter.write_line(f"kept for a look: {path}")
