"""The static site: index.html (current images by release and channel) and a page per release.

Every string on these pages comes from message history, which anyone able to publish on the bus
influences: Jinja2 autoescapes everything (autoescape=True, not only for .html names), URLs in
href attributes were restricted to http(s) when the row was read (families.py), and the only
script is our own static/site.js.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any

import jinja2

from reporter.outputs import latest, release_order
from shared.images import CHANNELS

CHANNEL_TITLES = {
    "release": "Release (official)",
    "candidate": "Release candidates",
    "weekly": "Weekly",
    "nightly": "Nightly",
    None: "Other (channel unknown)",
}
STATIC_FILES = ("style.css", "site.js")


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
    return env


def _release_label(release: str) -> str:
    return "Fedora Rawhide" if release == "Rawhide" else f"Fedora {release}"


def _page(release: str) -> str:
    return f"release-{release}.html"  # release is \d{1,3} or Rawhide (identify() checked it)


def _channels(images: list[dict], newest_first: bool) -> list[dict]:
    order = [*reversed(CHANNELS), None]
    out = []
    for channel in order:
        imgs = [i for i in images if i["channel"] == channel]
        if imgs:
            if newest_first:
                imgs.sort(key=lambda i: (i["first_seen"], i["name"]), reverse=True)
            out.append({"channel": channel, "title": CHANNEL_TITLES[channel], "images": imgs})
    return out


def render(images: list[dict], history: dict, generated: str) -> dict[str, bytes]:
    """{relative path: bytes} of the whole site (pages and static assets)."""
    env = environment()
    releases = sorted({i["release"] for i in images}, key=release_order)
    nav = [{"release": r, "label": _release_label(r), "page": _page(r)} for r in releases]
    regions = sorted({r for i in images for r in i["aws"]})
    last = history.get("last_timestamp")
    common = {
        "releases": nav,
        "history": history,
        "generated": generated,
        "regions": regions,
        "last_seen": None if last is None else
        dt.datetime.fromtimestamp(last, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    current = latest(images, by_cloud=True)
    groups = []
    for rel in nav:
        chans = _channels([i for i in current if i["release"] == rel["release"]], False)
        if chans:
            groups.append({**rel, "channels": chans})
    files = {
        "index.html": env.get_template("index.html").render(
            groups=groups, current_release=None, **common).encode(),
    }
    for rel in nav:
        mine = [i for i in images if i["release"] == rel["release"]]
        files[rel["page"]] = env.get_template("release.html").render(
            rel={**rel, "channels": _channels(mine, True)}, current_release=rel["release"],
            **common).encode()
    static = resources.files("reporter") / "static"
    for name in STATIC_FILES:
        files[f"static/{name}"] = (static / name).read_bytes()
    return files
