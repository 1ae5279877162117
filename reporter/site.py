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

import io
import re
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any, TextIO

import jinja2
from jinja2.filters import do_urlencode
from markupsafe import Markup, escape

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


# Every argument goes through escape(), as autoescape does in a template.
def when(value: Any) -> Markup:
    v = escape(value)
    return Markup(f'<time datetime="{v}" title="{v}">{escape(readable(value))}</time>')


def copy_button(text: Any, what: str) -> Markup:
    w = escape(what)
    return Markup(f'<button type="button" class="copy" data-copy="{escape(text)}" '
                  f'title="copy the {w}" aria-label="copy the {w}">copy</button>')


def launch_link(region: str, ami: str) -> Markup:
    return Markup('<a class="launch" href="https://console.aws.amazon.com/ec2/home?region='
                  f'{escape(do_urlencode(region))}#LaunchInstances:ami={escape(do_urlencode(ami))}'
                  '" rel="noopener noreferrer">launch</a>')


def download(d: dict) -> Markup:
    sums = d.get("checksum_url")
    fmt = escape(d["format"])
    copy = copy_button(d["sha256"], f"sha256 of the {d['format']}")
    return Markup(
        f'<span class="nowrap"><a href="{escape(d["url"])}" rel="noopener noreferrer">{fmt}</a> '
        f'<span class="size">{escape(_filesize(d["size"]))}</span></span>\n<details class="sha">'
        f'<summary>sha256</summary><code class="sha">{escape(d["sha256"])}</code> '
        f"{copy}"
        + (f' · <a href="{escape(sums)}" rel="noopener noreferrer">CHECKSUM</a>' if sums else "")
        + "</details>")


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
    # the small pieces every card repeats, as functions: a Jinja macro call costs more than the
    # markup it makes, and a page of Fedora's history has hundreds of thousands of them
    env.globals.update(when=when, copy_button=copy_button, launch_link=launch_link,
                       download=download)
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


def family_meta(key: tuple, regions: list[str], count: int, oldest: str | None,
                newest_seen: str | None) -> dict:
    """What a history page says about its family besides the rows and cards."""
    return {
        "key": key, "title": _family_title(key), "channel": key[3], "regions": regions,
        "count": count, "oldest": oldest, "newest_seen": newest_seen,
        "release_page": _page(key[0]), "release_label": _release_label(key[0]),
        "feed": feeds.feed_path(key[3]),
    }


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
        ordered = _newest_first(imgs)
        out[page] = {
            **family_meta(key, sorted({r for i in imgs for r in i["aws"]}), len(ordered),
                          ordered[-1]["first_seen"], ordered[0]["first_seen"]),
            "images": ordered,
            # none when no member's name reads as an image name (outputs.reads_as_image_name)
            "newest": next(iter(latest(known)), None),
        }
    return out


# ---- pages from fragments -----------------------------------------------------------------------
# A page is rendered as a skeleton with slots, and the slots are filled with fragments (an image's
# card, its history-table row) that a run keeps and reuses for images that did not change
# (reporter.store): the pages of Fedora's whole history are too big to render again each run.

# Stands for the page's root in fragments: autoescape writes every "<" that comes from history
# as "&lt;", so this text can only be ours.
ROOT = Markup("<@root@>")
_SLOT = re.compile(r"<@slot:(\w+)@>")


def _slot(name: str) -> Markup:
    return Markup(f"<@slot:{name}@>")


def card(env: jinja2.Environment, img: dict) -> str:
    """An image's card (image.html), its links relative to ROOT."""
    return env.get_template("image.html").render(img=img, root=ROOT, family_page=_page_of)


_CELLS, _NEWEST_CLASS, _NEWEST_BADGE = (Markup("<@cells@>"), Markup("<@newest-class@>"),
                                        Markup("<@newest-badge@>"))


def history_row(env: jinja2.Environment, img: dict) -> str:
    """An image's row on its family's history page, with slots for the family's region columns
    and the newest image's marks (``place_row``)."""
    return env.get_template("history_row.html").render(
        img=img, cells=_CELLS, newest_class=_NEWEST_CLASS, newest_badge=_NEWEST_BADGE)


def row_amis(img: dict) -> dict[str, str]:
    """What a history row shows per region: {region: AMI}."""
    return {region: entry["ami"] for region, entry in img["aws"].items()}


def place_row(row: str, amis: dict[str, str], regions: list[str], newest: bool) -> str:
    """``history_row``'s row with a column per region of ``regions`` (the family's)."""
    cells = []
    for region in regions:
        r = escape(region)
        ami = amis.get(region)
        cells.append(f'<td data-region="{r}" data-label="{r}">—</td>' if ami is None else
                     f'<td data-region="{r}" data-label="{r}"><code class="ami">{escape(ami)}'
                     f'</code> {copy_button(ami, "AMI id")}</td>')
    return (row.replace(_CELLS, "".join(cells))
            .replace(_NEWEST_CLASS, ' class="newest"' if newest else "")
            .replace(_NEWEST_BADGE, ' <span class="badge current">current</span>' if newest
                     else ""))


def _page_of(img: dict) -> str | None:
    return family_page(family_key(img))


def _fill(out: TextIO, skeleton: str, slots: dict[str, Iterable[str]], root: str) -> None:
    """Write ``skeleton`` with each slot replaced by its fragments, streamed."""
    at = 0
    for m in _SLOT.finditer(skeleton):
        out.write(skeleton[at:m.start()])
        for fragment in slots[m.group(1)]:
            out.write(fragment.replace(ROOT, root))
        at = m.end()
    out.write(skeleton[at:])


def common(releases: list[str], history: dict, generated: str) -> dict[str, Any]:
    """What every page's frame needs: the releases' navigation, the feeds, the history read."""
    last = history.get("last_timestamp")
    return {
        "releases": [{"release": r, "label": _release_label(r), "page": _page(r)}
                     for r in releases],
        "history": history,
        "generated": generated,
        "last_seen": None if last is None else iso(last),
        "feeds": [{"channel": c, "title": CHANNEL_TITLES[c] if c else "All channels",
                   "path": feeds.feed_path(c)} for c in (None, *reversed(CHANNELS))],
        "family_page": _page_of,
        "root": "",
        "run": False,  # only the locator says when the run was and what it read
    }


def release_names(images: Iterable[dict]) -> list[str]:
    return sorted({i["release"] for i in images if i["release"]}, key=release_order)


def index_page(env: jinja2.Environment, frame: dict, current: list[dict]) -> bytes:
    """The locator: ``current`` are the newest images by cloud (outputs.latest)."""
    rows = locator_rows(current)
    return env.get_template("index.html").render(
        rows=rows, options=_options(rows), filters=FILTERS, channels=_channel_summaries(current),
        current_release=None, **{**frame, "run": True}).encode()


CHANNEL_ORDER = (*reversed(CHANNELS), None)  # the sections of a release page


def release_page(out: TextIO, env: jinja2.Environment, frame: dict, release: str,
                 cards: Callable[[str | None], Iterable[str]],
                 channels: Iterable[str | None]) -> None:
    """A release's page: a section per channel of ``channels`` (in CHANNEL_ORDER) with
    ``cards(channel)``, the cards of its images newest first."""
    sections = [{"channel": c, "title": CHANNEL_TITLES[c], "cards": _slot(f"c{i}")}
                for i, c in enumerate(CHANNEL_ORDER) if c in set(channels)]
    rel = {"release": release, "label": _release_label(release), "page": _page(release),
           "channels": sections}
    skeleton = env.get_template("release.html").render(rel=rel, current_release=release, **frame)
    _fill(out, skeleton, {f"c{i}": cards(c) for i, c in enumerate(CHANNEL_ORDER)}, "")


def history_page(out: TextIO, env: jinja2.Environment, frame: dict, family: dict,
                 rows: Iterable[str], cards: Iterable[str]) -> None:
    """A family's page (family_meta) with its table ``rows`` and ``cards``, newest first."""
    skeleton = env.get_template("history.html").render(
        family={**family, "rows": _slot("rows"), "cards": _slot("cards")},
        current_release=family["key"][0], **{**frame, "root": "../"})
    _fill(out, skeleton, {"rows": rows, "cards": cards}, "../")


def static_files() -> dict[str, bytes]:
    static = resources.files("reporter") / "static"
    return {f"static/{name}": (static / name).read_bytes() for name in STATIC_FILES}


def render(images: list[dict], history: dict, generated: str) -> dict[str, bytes]:
    """{relative path: bytes} of the whole site (pages, feeds and static assets)."""
    env = environment()
    frame = common(release_names(images), history, generated)
    files = {"index.html": index_page(env, frame, latest(images, by_cloud=True))}
    cards = {id(img): card(env, img) for img in images}
    for rel in frame["releases"]:
        mine = _newest_first([i for i in images if i["release"] == rel["release"]])
        out = io.StringIO()
        release_page(out, env, frame, rel["release"],
                     lambda c, mine=mine: (cards[id(i)] for i in mine if i["channel"] == c),
                     {i["channel"] for i in mine})
        files[rel["page"]] = out.getvalue().encode()
    for page, family in families(images).items():
        out = io.StringIO()
        ordered = family["images"]
        history_page(out, env, frame, family,
                     (place_row(history_row(env, i), row_amis(i), family["regions"],
                                i is family["newest"]) for i in ordered),
                     (cards[id(i)] for i in ordered))
        files[page] = out.getvalue().encode()
    files.update(feeds.render(images, env, frame["last_seen"], _page_of))
    files.update(static_files())
    return files
