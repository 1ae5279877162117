"""The Atom feeds: valid per RFC 4287 (read back with feedparser and checked element by element),
one per channel and one for all, newest first, linking to pages that exist, escaping history."""

from __future__ import annotations

import html
import urllib.parse
import xml.etree.ElementTree as ET

import feedparser
import pytest

from reporter import feeds
from shared.images import CHANNELS
from tests.reporter.conftest import EVIL_IMG, EVIL_SCRIPT, FAMILY, NEWER, OLDER

A = "{http://www.w3.org/2005/Atom}"
RFC3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
ALL_FEEDS = [None, *CHANNELS]


def _one(el: ET.Element, tag: str) -> ET.Element:
    found = el.findall(A + tag)
    assert len(found) == 1, f"{el.tag} has {len(found)} {tag} elements, RFC 4287 wants one"
    return found[0]


@pytest.mark.parametrize("channel", ALL_FEEDS)
def test_each_feed_has_every_element_rfc_4287_requires(rendered, channel):
    path = rendered / feeds.feed_path(channel)
    root = ET.fromstring(path.read_bytes())
    assert root.tag == A + "feed"
    for tag in ("id", "title", "updated"):
        assert _one(root, tag).text
    assert _one(root, "updated").text.endswith("Z")
    assert _one(_one(root, "author"), "name").text  # no entry carries its own author
    entries = root.findall(A + "entry")
    ids = [_one(e, "id").text for e in entries]
    assert len(set(ids)) == len(ids)
    for e in entries:
        assert _one(e, "title").text and _one(e, "updated").text.endswith("Z")
        links = [ln for ln in e.findall(A + "link") if ln.get("rel", "alternate") == "alternate"]
        assert len(links) == 1 and links[0].get("href")
        assert urllib.parse.urlsplit(_one(e, "id").text).scheme == "tag"
    if entries:
        newest = max(_one(e, "updated").text for e in entries)
        assert _one(root, "updated").text == newest


@pytest.mark.parametrize("channel", ALL_FEEDS)
def test_feedparser_reads_each_feed_cleanly_and_its_links_lead_to_pages(rendered, channel,
                                                                       site_images):
    path = rendered / feeds.feed_path(channel)
    served = f"https://report.example.org/{feeds.feed_path(channel)}"  # where it would be served
    parsed = feedparser.parse(path.read_bytes(), response_headers={
        "content-location": served, "content-type": "application/atom+xml"})
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.id and parsed.feed.title and parsed.feed.updated
    want = [i for i in site_images if channel is None or i["channel"] == channel]
    assert len(parsed.entries) == len(want)
    assert {e.title.rsplit(": ", 1)[1] for e in parsed.entries} == {i["name"] for i in want}
    published = [e.published for e in parsed.entries]
    assert published == sorted(published, reverse=True), "newest first"
    for entry in parsed.entries:
        target = urllib.parse.urlsplit(entry.link)  # resolved against the feed's own URL
        assert target.netloc == "report.example.org"
        page = rendered / urllib.parse.unquote(target.path).lstrip("/")
        assert page.is_file(), entry.link
        if target.fragment and page.parent.name == "history":
            assert f'id="{urllib.parse.unquote(target.fragment)}"' in page.read_text() or \
                EVIL_SCRIPT in urllib.parse.unquote(target.fragment)


def test_a_new_image_reaches_its_channel_feed_and_the_feed_for_all(rendered):
    nightly = feedparser.parse((rendered / "feeds/nightly.atom").read_bytes())
    everything = feedparser.parse((rendered / "feeds/all.atom").read_bytes())
    for parsed in (nightly, everything):
        titles = [e.title for e in parsed.entries]
        assert any(t.endswith(NEWER) for t in titles) and any(t.endswith(OLDER) for t in titles)
    entry = next(e for e in nightly.entries if e.title.endswith(OLDER))
    assert entry.link.endswith(f"{FAMILY}#{OLDER}")
    assert "ami-0e1d2c3b4a5f60718" in entry.content[0].value  # the AMIs are in the entry
    release = feedparser.parse((rendered / "feeds/release.atom").read_bytes())
    assert [e.tags[0].term for e in release.entries] == ["release"]


def test_history_strings_are_escaped_in_the_feeds(rendered):
    data = (rendered / "feeds/all.atom").read_bytes()
    assert b"<script" not in data and b"<img" not in data
    parsed = feedparser.parse(data)
    # shown as text, intact (names cannot be hostile: the fold refuses them, test_poison.py)
    assert any(EVIL_IMG in html.unescape(e.content[0].value) for e in parsed.entries)
