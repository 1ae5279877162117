"""The static site as written: the locator, times, release and history pages, hostile history.

What a browser makes of it (filters, copy, narrow screens) is in test_browser.py.
"""

from __future__ import annotations

import json
import re

import pytest

from reporter import site, times
from reporter.outputs import latest
from tests.reporter.conftest import (
    EVIL_ATTR,
    EVIL_IMG,
    EVIL_SCRIPT,
    FAMILY,
    NEWER,
    OLDER,
    OLDER_AMIS,
)
from tests.reporter.conftest import elements as _elements
from tests.reporter.histories import (
    DIGEST_ARM,
    DIGEST_LIST,
    DIGEST_X86,
    GENERIC_NAME,
    GLANCE_A,
    GLANCE_B,
    SHA_Q,
)


@pytest.mark.parametrize("page", ["index.html", "release-41.html",
                                  "history/41-Cloud_Base-x86_64-release.html"])
def test_templates_autoescape_every_string(rendered, page):
    text = (rendered / page).read_text()
    assert EVIL_SCRIPT not in text and EVIL_IMG not in text
    assert "&lt;script&gt;document.documentElement" in text
    scripts = [a for t, a in _elements(text) if t == "script"]
    assert scripts == [{"src": ("../" if "/" in page else "") + "static/site.js"}]
    assert not [a for _, a in _elements(text) if "onerror" in a or "onmouseover" in a]


def _rows(dom: str) -> list[dict]:
    """The locator's body rows: their data-* attributes, and whether the row is hidden."""
    return [{**{k[5:]: v for k, v in a.items() if k.startswith("data-")}, "hidden": "hidden" in a}
            for t, a in _elements(dom) if t == "tr" and "data-ami" in a]


def test_locator_lists_every_current_image_in_every_region(rendered, site_images):
    text = (rendered / "index.html").read_text()
    rows = _rows(text)
    current = latest(site_images, by_cloud=True)
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


def test_release_pages_exist_for_every_release(rendered):
    index = json.dumps(sorted(p.name for p in rendered.glob("release-*.html")))
    assert index == json.dumps(sorted(
        f"release-{r}.html" for r in ("24", "27", "40", "41", "43", "Rawhide")))


def test_every_family_has_a_history_page_with_every_image_newest_first(rendered, site_images):
    families = {}
    for img in site_images:
        families.setdefault((img["release"], img["subvariant"], img["arch"], img["channel"]),
                            []).append(img)
    pages = sorted(str(p.relative_to(rendered)) for p in (rendered / "history").glob("*.html"))
    assert pages == sorted(f"history/{r}-{s}-{a}-{c}.html" for r, s, a, c in families)
    for (release, sub, arch, channel), imgs in families.items():
        text = (rendered / f"history/{release}-{sub}-{arch}-{channel}.html").read_text()
        names = [a["data-name"] for t, a in _elements(text) if t == "tr" and "data-name" in a]
        assert names == [i["name"] for i in sorted(imgs, key=lambda i: i["first_seen"],
                                                   reverse=True)]


def test_a_history_page_shows_earlier_images_with_their_amis_per_region(rendered):
    text = (rendered / FAMILY).read_text()
    tags = _elements(text)
    rows = [a for t, a in tags if t == "tr" and "data-name" in a]
    # the family is release x edition x arch x channel: the Azure image of that nightly is in it
    azure = "Fedora-Cloud-Base-Azure-40-20240501.n.0.x86_64"
    assert [r["data-name"] for r in rows] == [azure, NEWER, OLDER]
    assert [r.get("class") for r in rows] == ["newest", None, None]
    columns = re.findall(r'<th scope="col">([a-z]{2}-[a-z]+-\d)</th>', text)
    assert columns == ["eu-central-1", "us-east-2", "us-west-1"]
    body = text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    newer_row, older_row = body.split("</tr>")[1:3]
    cell = r'<td data-region="([^"]+)" data-label="[^"]+">(?:<code class="ami">([^<]+)</code>|—)'
    cells = [re.findall(cell, row) for row in (newer_row, older_row)]
    assert cells[0] == [("eu-central-1", ""), ("us-east-2", "ami-123"), ("us-west-1", "ami-321")]
    assert cells[1] == [("eu-central-1", OLDER_AMIS["eu-central-1"]),
                        ("us-east-2", OLDER_AMIS["us-east-2"]), ("us-west-1", "")]
    assert "2025-05-25 12:00 UTC" in older_row  # a week before the newer one, readable
    # each image's card is on the page too, as the anchor the locator and the feeds link to
    assert {a["id"] for t, a in tags if t == "article"} == {azure, NEWER, OLDER}
    assert f'href="{FAMILY}#{NEWER}"' in (rendered / "index.html").read_text()


def test_latest_json_names_the_newest_image_of_every_history_page(rendered):
    latest_doc = json.loads((rendered / "latest.json").read_text())["latest"]
    assert len(latest_doc) >= 10
    for img in latest_doc:
        page = rendered / site.family_page(site.family_key(img))
        newest = [a for t, a in _elements(page.read_text()) if t == "tr" and
                  a.get("class") == "newest"]
        assert [a["data-name"] for a in newest] == [img["name"]], page.name


def test_container_images_show_their_pull_references_and_digests(rendered):
    page = (rendered / "release-43.html").read_text()
    for arch, digest in (("x86_64", DIGEST_X86), ("aarch64", DIGEST_ARM)):
        card = page[page.index(f'data-name="Fedora-Container-Base-Generic-43-1.6.{arch}"'):]
        card = card[:card.index("</article>")]
        for tag in ("43", "43-20251023.0", "latest"):
            assert f"<code class=\"pull\">quay.io/fedora/fedora:{tag}</code>" in card
        assert f"<code class=\"digest\" title=\"quay.io/fedora/fedora:43-20251023.0-{arch}\">" \
            f"{digest}</code>" in card
        assert f'data-copy="quay.io/fedora/fedora@{digest}"' in card
        assert f'title="manifest list {DIGEST_LIST}"' in card
    locator = (rendered / "index.html").read_text()
    for arch, digest in (("x86_64", DIGEST_X86), ("aarch64", DIGEST_ARM)):
        assert (f'<code class="pull" title="{arch}: {digest}">quay.io/fedora/fedora:43</code> '
                f'<button type="button" class="copy" data-copy="quay.io/fedora/fedora@{digest}"'
                in locator)
    assert ('<code class="pull" title="s390x: digest not reported">'
            'registry.fedoraproject.org/fedora:40</code>') in locator
    old = (rendered / "release-40.html").read_text()
    assert "registry.fedoraproject.org/fedora:latest" in old  # fedora_image_uploader's
    assert "digest not reported" in old


def test_the_glance_image_of_each_openstack_cloud_is_shown(rendered):
    for page in ("release-41.html", "history/41-Cloud_Base-x86_64-candidate.html"):
        text = (rendered / page).read_text()
        card = text[text.index(f'data-name="{GENERIC_NAME}"'):]
        card = card[:card.index("</article>")]
        rows = [a["data-cloud"] for t, a in _elements(card) if t == "tr" and "data-cloud" in a]
        assert sorted(rows) == sorted([EVIL_ATTR, "fedora-infra", "vexxhost"])  # escaped
        for image_id in (GLANCE_A, GLANCE_B):
            assert f'<code class="glance-id">{image_id}</code>' in card
            assert f'data-copy="{image_id}"' in card
        assert EVIL_IMG not in card and "&lt;img src=x" in card
