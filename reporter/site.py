"""The static site: the locator (index.html), a page per release, the history of every image
family (history/*.html) and the Atom feeds (feeds/, see reporter.feeds).

Every string on these pages comes from message history, which anyone able to publish on the bus
influences: Jinja2 autoescapes everything (autoescape=True, not only for .html names), URLs in
href attributes were restricted to http(s) when the row was read (families.py), file names are
built only from validated identity words (and checked again here), and the only script is our
own static/site.js. Every page is complete without JavaScript; the script adds the locator's
filters and sorting, and the copy buttons.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import jinja2

from reporter import feeds
from reporter.outputs import latest, release_order
from reporter.times import iso, readable
from shared.images import CHANNELS

CHANNEL_TITLES = {
    "release": "Release (official)",
    "candidate": "Release candidates",
    "weekly": "Weekly",
    "nightly": "Nightly",
    None: "Other (channel unknown)",
}
STATIC_FILES = ("style.css", "site.js")
HISTORY_DIR = "history"
# the locator's filter boxes, in the order shown: URL query key -> row field
FILTERS = ("release", "channel", "subvariant", "arch", "region")
_FILE_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]{0,63}", re.ASCII)


def _filesize(n: Any) -> str:
    if not isinstance(n, int):
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reporter", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["filesize"] = _filesize
    env.filters["readable"] = readable
    env.globals["channel_title"] = lambda c: CHANNEL_TITLES.get(c, str(c))
    return env


def _release_label(release: str) -> str:
    return "Fedora Rawhide" if release == "Rawhide" else f"Fedora {release}"


def _page(release: str) -> str:
    return f"release-{release}.html"  # release is \d{1,3} or Rawhide (identify() checked it)


def family_key(img: dict) -> tuple:
    """An image family: release x subvariant x arch x channel (the unit of latest.json)."""
    return (img["release"], img["subvariant"], img["arch"], img["channel"])


def family_page(key: tuple) -> str | None:
    """history/<release>-<subvariant>-<arch>-<channel>.html, or None when a part is missing or
    not a plain word (then the family has no page rather than a strange file name)."""
    words = [w if w is not None else "unknown" for w in key]
    if key[0] is None or not all(isinstance(w, str) and _FILE_WORD.fullmatch(w) for w in words):
        return None
    return f"{HISTORY_DIR}/{'-'.join(words)}.html"


def _newest_first(images: list[dict]) -> list[dict]:
    return sorted(images, key=lambda i: (i["first_seen"], i["updated"], i["name"]), reverse=True)


def _channels(images: list[dict], newest_first: bool) -> list[dict]:
    order = [*reversed(CHANNELS), None]
    out = []
    for channel in order:
        imgs = [i for i in images if i["channel"] == channel]
        if imgs:
            if newest_first:
                imgs = _newest_first(imgs)
            out.append({"channel": channel, "title": CHANNEL_TITLES[channel], "images": imgs})
    return out


def locator_rows(current: list[dict]) -> list[dict]:
    """One row per current image x EC2 region; an image without AMIs gets one row of its own
    (region None) so its downloads or other clouds are listed too."""
    rows = []
    for img in current:
        page = family_page(family_key(img))
        release = img["release"] or ""
        keys = {  # what the columns sort by where the text shown does not sort right
            "release": f"{int(release):04d}" if release.isdigit() else "9999",  # Rawhide last
            "channel": str(CHANNELS.index(img["channel"]) if img["channel"] in CHANNELS else -1),
        }
        for region, entry in list(img["aws"].items()) or [(None, None)]:
            rows.append({"img": img, "region": region, "ami": entry["ami"] if entry else None,
                         "history": page, "sort": keys})
    return rows


def _options(rows: list[dict]) -> dict[str, list[str]]:
    """The values each filter box offers, in the order people expect them."""
    def values(field: str) -> set[str]:
        return {(r["region"] if field == "region" else r["img"][field]) or "" for r in rows} - {""}

    channel_rank = {c: i for i, c in enumerate(reversed(CHANNELS))}
    return {
        "release": sorted(values("release"), key=release_order),
        "channel": sorted(values("channel"), key=lambda c: channel_rank.get(c, 99)),
        "subvariant": sorted(values("subvariant")),
        "arch": sorted(values("arch")),
        "region": sorted(values("region")),
    }


def _channel_summaries(current: list[dict]) -> list[dict]:
    """A section per channel for the locator's head: how many current images, the newest."""
    out = []
    for group in _channels(current, newest_first=True):
        if group["channel"] is None:
            continue
        newest = group["images"][0]
        out.append({**group, "count": len(group["images"]), "newest": newest["first_seen"],
                    "feed": feeds.feed_path(group["channel"])})
    return out


def _family_title(key: tuple) -> str:
    release, subvariant, arch, channel = key
    return f"{_release_label(release)} {subvariant or '?'} {arch or '?'}, {channel or 'unknown'}"


def families(images: list[dict]) -> dict[str, dict]:
    """{history page: family} for every family with a page: its images newest first, the newest
    (the image latest.json names for it) and every EC2 region any of them reached."""
    members: dict[tuple, list[dict]] = {}
    for img in images:
        members.setdefault(family_key(img), []).append(img)
    out = {}
    for key, imgs in members.items():
        page = family_page(key)
        if page is None:
            continue
        known = [i for i in imgs if i["channel"] is not None]
        out[page] = {
            "key": key, "title": _family_title(key), "channel": key[3],
            "images": _newest_first(imgs),
            # none when no member's name reads as an image name (outputs.reads_as_image_name)
            "newest": next(iter(latest(known)), None),
            "regions": sorted({r for i in imgs for r in i["aws"]}),
            "release_page": _page(key[0]), "release_label": _release_label(key[0]),
            "feed": feeds.feed_path(key[3]),
        }
    return out


def render(images: list[dict], history: dict, generated: str) -> dict[str, bytes]:
    """{relative path: bytes} of the whole site (pages, feeds and static assets)."""
    env = environment()
    releases = sorted({i["release"] for i in images if i["release"]}, key=release_order)
    nav = [{"release": r, "label": _release_label(r), "page": _page(r)} for r in releases]
    last = history.get("last_timestamp")
    common = {
        "releases": nav,
        "history": history,
        "generated": generated,
        "last_seen": None if last is None else iso(last),
        "feeds": [{"channel": c, "title": CHANNEL_TITLES[c] if c else "All channels",
                   "path": feeds.feed_path(c)} for c in (None, *reversed(CHANNELS))],
        "family_page": lambda i: family_page(family_key(i)),
        "root": "",
    }
    current = latest(images, by_cloud=True)
    rows = locator_rows(current)
    files = {
        "index.html": env.get_template("index.html").render(
            rows=rows, options=_options(rows), filters=FILTERS,
            channels=_channel_summaries(current), current_release=None, **common).encode(),
    }
    for rel in nav:
        mine = [i for i in images if i["release"] == rel["release"]]
        files[rel["page"]] = env.get_template("release.html").render(
            rel={**rel, "channels": _channels(mine, True)}, current_release=rel["release"],
            **common).encode()
    history_page = env.get_template("history.html")
    for page, family in families(images).items():
        files[page] = history_page.render(
            family=family, current_release=family["key"][0], **{**common, "root": "../"}).encode()
    files.update(feeds.render(images, env, common["last_seen"], common["family_page"]))
    static = resources.files("reporter") / "static"
    for name in STATIC_FILES:
        files[f"static/{name}"] = (static / name).read_bytes()
    return files
