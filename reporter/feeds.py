"""Atom feeds (RFC 4287) of new images: feeds/all.atom and one per channel (feeds/<channel>.atom).

People subscribe to these without a message-bus account. Each entry is one image: its id is a
tag URI made from the image name (stable across runs and hosts), ``published`` is when it arrived
in the channel (first seen; for a release, when it was promoted), ``updated`` the newest message
about it (AMIs still arrive in regions after the first one). Links are relative to the feed (the
report does not know the URL it is served at), pointing at the image on its family's history
page. The XML is built with ElementTree, which escapes every string from history; the entry's
HTML content is rendered by the site's Jinja2 environment with autoescape.

Everything here depends only on the images (and, for an empty feed, the newest message's time),
so two runs over the same history write the same feeds.
"""

from __future__ import annotations

import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable

import jinja2

from shared.images import CHANNELS

ATOM = "http://www.w3.org/2005/Atom"
FEED_DIR = "feeds"
MAX_ENTRIES = 100  # newest first; older images stay on the history pages
TAG = "tag:fedoraproject.org,2014:fedimg"
TITLES = {None: "all channels", "release": "official releases", "candidate": "release candidates",
          "weekly": "weekly images", "nightly": "nightly images"}
EPOCH = "1970-01-01T00:00:00Z"


def feed_path(channel: str | None) -> str:
    """The feed of ``channel`` (None: every channel), relative to the site's root."""
    return f"{FEED_DIR}/{channel or 'all'}.atom"


def arrived(img: dict) -> str:
    """When the image arrived in its channel: promotion for a release, else first seen."""
    promoted = img.get("promoted") or {}
    if img["channel"] == "release" and promoted.get("at"):
        return promoted["at"]
    return img["first_seen"]


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    el.text = text
    return el


def _link(parent: ET.Element, href: str, rel: str, kind: str | None = None) -> None:
    attrs = {"href": href, "rel": rel}
    if kind:
        attrs["type"] = kind
    ET.SubElement(parent, f"{{{ATOM}}}link", attrs)


def _feed(channel: str | None, images: list[dict], fallback_updated: str,
          family_page: Callable[[dict], str | None], content: jinja2.Template) -> bytes:
    entries = sorted(images, key=lambda i: (arrived(i), i["name"]), reverse=True)[:MAX_ENTRIES]
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "id", f"{TAG}/feed/{channel or 'all'}")
    _text(feed, "title", f"Fedora cloud images: {TITLES.get(channel, channel)}")
    _text(feed, "updated", max((i["updated"] for i in entries), default=fallback_updated))
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "Fedora cloud image pipeline (fedimg)")
    _link(feed, f"{channel or 'all'}.atom", "self", "application/atom+xml")
    query = f"?channel={channel}" if channel else ""
    _link(feed, f"../index.html{query}", "alternate", "text/html")
    _text(feed, "generator", "fedimg-report")
    for img in entries:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, "id", f"{TAG}/image/{urllib.parse.quote(img['name'], safe='')}")
        what = " ".join(str(img[k]) for k in ("release", "subvariant", "arch") if img[k])
        _text(entry, "title",
              f"Fedora {what} ({img['channel'] or 'channel unknown'}): {img['name']}")
        _text(entry, "updated", max(img["updated"], arrived(img)))
        _text(entry, "published", arrived(img))
        page = family_page(img)
        href = f"../{page}#{urllib.parse.quote(img['name'], safe='')}" if page else "../index.html"
        _link(entry, href, "alternate", "text/html")
        for term in (img["channel"], img["release"], img["arch"]):
            if term:
                ET.SubElement(entry, f"{{{ATOM}}}category", {"term": str(term)})
        _text(entry, "content", content.render(img=img), type="html")
    ET.register_namespace("", ATOM)
    ET.indent(feed)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True) + b"\n"


def render(images: list[dict], env: jinja2.Environment, last_message: str | None,
           family_page: Callable[[dict], str | None]) -> dict[str, bytes]:
    """{relative path: bytes} of every feed: all channels, then one per channel."""
    content = env.get_template("feed_entry.html")
    fallback = last_message or EPOCH
    files = {feed_path(None): _feed(None, images, fallback, family_page, content)}
    for channel in reversed(CHANNELS):
        mine = [i for i in images if i["channel"] == channel]
        files[feed_path(channel)] = _feed(channel, mine, fallback, family_page, content)
    return files
