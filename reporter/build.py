"""Render a run's report from the state store (reporter.store), touching only what changed.

1. ``refresh``: for every image the run's rows touched (all of them in a full run), its
   images.json entry and fragments are made again from its registers and kept in the store; the
   pages those images were on before and are on now are marked for rendering.
2. ``write``: the new tree is written beside DIR: images.json, simplestreams, the locator and the
   feeds are streamed from the store every run (they carry the run's time, or are small); a
   release or history page is assembled from its images' stored fragments when one of its images
   changed, and otherwise hard-linked from the previous DIR (files are never written in place, so
   the previous tree keeps its own copy until it is removed).

Every page depends only on what the store holds, never on which run made a fragment, so an
incremental run writes the same bytes as a full run over the same messages.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from reporter import claims, containers, feeds, outputs, site
from reporter.claims import ClientFor
from reporter.fold import image_record
from reporter.store import Store
from shared.images import CHANNELS

log = logging.getLogger(__name__)

CHUNK = 2000  # images rendered per batch: bounds the memory of a full run


@dataclass
class Changes:
    """What ``refresh`` found changed: pages to render (the others are linked)."""

    releases: set[str] = field(default_factory=set)
    families: set[str] = field(default_factory=set)
    everything: bool = False  # the navigation changed, or the previous DIR cannot be reused
    ami_check: dict[str, int] | None = None


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _holders(store: Store, touched: set[str], everything: bool) -> tuple[dict, set[str]]:
    """Container tag holders over every image, and the images whose tags moved.

    Only the images a run touched can have new container registers, so when none of them has
    any, the holders stay as they were and no record needs them ({})."""
    if not everything and not any(store.db.execute(
            "SELECT 1 FROM images WHERE containers IS NOT NULL AND key = ?", (key,)).fetchone()
            for key in touched):
        return {}, set()
    regs = {key: json.loads(text) for key, text in store.db.execute(
        "SELECT key, containers FROM images WHERE containers IS NOT NULL")}
    holders = containers.tag_holders(regs.values())
    old = {tuple(w): (tuple(c[0]), c[1]) for w, c in store.meta("holders", [])}
    moved = {w for w in holders.keys() | old.keys() if holders.get(w) != old.get(w)}
    affected = set()
    for key, image_regs in regs.items():
        for reg_key, reg in image_regs.items():
            value = reg[2]
            # an image's record changes when a tag it claims comes to or leaves its list
            if reg_key.endswith(" list") and any(
                    containers.holds(reg, t, holders) != containers.holds(reg, t, old)
                    for t in value["tags"]
                    if (value["registry"], value["repository"], t) in moved):
                affected.add(key)
    store.set_meta(holders=sorted([list(w), [list(c[0]), c[1]]] for w, c in holders.items()))
    return holders, affected


def refresh(store: Store, env: jinja2.Environment, touched: set[str], everything: bool,
            owner: str | None = None, ec2: ClientFor | None = None) -> Changes:
    """Make the records and fragments of changed images again (see the module docstring);
    with ``ec2``, every image is checked (reporter.claims) and made again."""
    checked_before = store.meta("checked", False)
    everything = everything or ec2 is not None or checked_before
    changes = Changes(everything=everything)
    holders, moved = _holders(store, touched, everything)
    keys = sorted(store.keys() if everything else touched | moved)
    done = claims.Checked()
    for at in range(0, len(keys), CHUNK):
        batch = list(store.states(keys[at:at + CHUNK]))
        records = [image_record(img, holders) for _, img in batch]
        if ec2 is not None:
            part = claims.check(records, owner or "", ec2)
            for k, v in part.as_dict().items():
                setattr(done, k, getattr(done, k) + v)
        shown = claims.launchable(records)
        for (key, _), rec, show in zip(batch, records, shown, strict=True):
            old = store.db.execute("SELECT release, family FROM images WHERE key = ?",
                                   (key,)).fetchone()
            _keep(store, env, key, rec, show)
            page = site.family_page(site.family_key(show))
            for release, family in (old or (None, None), (show["release"], page)):
                if release:
                    changes.releases.add(release)
                if family:
                    changes.families.add(family)
    store.set_meta(checked=ec2 is not None)
    if ec2 is not None:
        changes.ami_check = done.as_dict()
    return changes


def _keep(store: Store, env: jinja2.Environment, key: str, rec: dict, show: dict) -> None:
    reads = outputs.reads_as_image_name(show)
    versions = outputs.stream_versions(show) if reads else None
    store.db.execute(
        "UPDATE images SET record = ?, name = ?, release = ?, subvariant = ?, arch = ?, "
        "channel = ?, cloud = ?, first_seen = ?, updated = ?, arrived = ?, reads = ?, "
        "family = ?, regions = ?, amis = ?, card = ?, row = ?, product = ?, "
        "sbase = ?, aws_version = ?, dl_version = ? WHERE key = ?",
        (_dump(rec), show["name"], show["release"], show["subvariant"], show["arch"],
         show["channel"], show["cloud"], show["first_seen"], show["updated"],
         feeds.arrived(show), int(reads), site.family_page(site.family_key(show)),
         _dump(sorted(show["aws"])), _dump(site.row_amis(show)), site.card(env, show),
         site.history_row(env, show),
         versions and versions[0], versions and _dump(versions[1]),
         versions and versions[2] and _dump(versions[2]),
         versions and versions[3] and _dump(versions[3]), key))


# ---- the tree ----------------------------------------------------------------------------------


def _records(store: Store, sql: str, args: tuple = ()) -> list[dict]:
    return claims.launchable([json.loads(t) for (t,) in store.db.execute(sql, args)])


def _current(store: Store) -> list[dict]:
    """The images outputs.latest can name (with and without clouds): the newest per group."""
    keys: set[str] = set()
    for cloud in ("", ", coalesce(cloud, '')"):
        # SQLite takes the bare column (key) from the row where max() is; first_seen and
        # updated have a fixed width, so the text compares like (first_seen, updated, name)
        keys.update(k for k, _ in store.db.execute(
            "SELECT key, max(first_seen || updated || name) FROM images "
            "WHERE reads = 1 AND channel IS NOT NULL "
            f"GROUP BY release, subvariant, arch, channel{cloud}"))
    ordered = sorted(keys)
    return [rec for at in range(0, len(ordered), 500)
            for rec in _records(store, "SELECT record FROM images WHERE key IN "
                                f"({','.join('?' * len(ordered[at:at + 500]))})",
                                tuple(ordered[at:at + 500]))]


def write(root: Path, previous: Path | None, store: Store, env: jinja2.Environment,
          changes: Changes, hist: dict, generated: str, last_timestamp: float | None) -> None:
    """Write the whole tree into the empty directory ``root`` (see the module docstring)."""
    def text(rel: str) -> Any:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8")

    with text("images.json") as f:
        outputs.write_images_json(f, hist, generated,
                                  (t for (t,) in store.db.execute(
                                      "SELECT record FROM images ORDER BY key")))
    store.set_meta(published=_identity(root / "images.json"))
    current = _current(store)
    (root / "latest.json").write_bytes(outputs.dumps(outputs.latest_json(
        current, None, "", generated, hist)))
    outputs.write_streams(root, store, last_timestamp)

    releases = site.release_names(
        {"release": r} for (r,) in store.db.execute("SELECT DISTINCT release FROM images"))
    nav_changed = releases != store.meta("releases")
    store.set_meta(releases=releases)
    frame = site.common(releases, hist, generated)
    (root / "index.html").write_bytes(site.index_page(env, frame, current))
    fresh = changes.everything or nav_changed or previous is None
    rendered = linked = 0

    for release in releases:
        page = site._page(release)
        if not (fresh or release in changes.releases) and _link(previous, root, page):
            linked += 1
        else:
            rendered += 1
            with text(page) as f:
                channels = {c for (c,) in store.db.execute(
                    "SELECT DISTINCT channel FROM images WHERE release = ?", (release,))}
                site.release_page(f, env, frame, release,
                                  lambda c, r=release: _cards(store, r, c), channels)

    for (page,) in store.db.execute(
            "SELECT DISTINCT family FROM images WHERE family IS NOT NULL").fetchall():
        if not (fresh or page in changes.families) and _link(previous, root, page):
            linked += 1
        else:
            rendered += 1
            with text(page) as f:
                _history(f, store, env, frame, page)
    log.info("release and history pages: %d rendered, %d unchanged (linked)", rendered, linked)

    newest = _records(store, _FEED_SQL.format(where="", limit=feeds.MAX_ENTRIES))
    for channel in CHANNELS:
        newest += _records(store, _FEED_SQL.format(where="WHERE channel = ?",
                                                   limit=feeds.MAX_ENTRIES), (channel,))
    unique = {img["name"]: img for img in newest}
    for rel, data in {**feeds.render(list(unique.values()), env, frame["last_seen"],
                                     site._page_of), **site.static_files()}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


# feeds.render picks the newest entries itself; these are each channel's and all channels' newest
_FEED_SQL = "SELECT record FROM images {where} ORDER BY arrived DESC, name DESC LIMIT {limit}"


def _identity(path: Path) -> list[int]:
    """What tells this file from any other: renaming the tree keeps it, rewriting changes it."""
    st = path.stat()
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def published_by(store: Store, directory: Path) -> bool:
    """Whether ``directory`` is the tree the store's last run published (its pages can be
    reused); a run killed between publishing and committing, or another program writing DIR,
    makes it not so, and every page is assembled again from the store."""
    try:
        return _identity(directory / "images.json") == store.meta("published")
    except OSError:
        return False


def _link(previous: Path | None, root: Path, rel: str) -> bool:
    """Hard-link an unchanged page from the previous tree; False when it has none."""
    if previous is None:
        return False
    try:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(previous / rel, root / rel)
    except FileNotFoundError:
        return False
    return True


def _cards(store: Store, release: str, channel: str | None) -> Iterator[str]:
    for (card,) in store.db.execute(
            "SELECT card FROM images WHERE release = ? AND channel IS ? "
            "ORDER BY first_seen DESC, updated DESC, name DESC", (release, channel)):
        yield card


def _history(out: Any, store: Store, env: jinja2.Environment, frame: dict, page: str) -> None:
    members = store.db.execute(
        "SELECT key, reads, channel, regions, first_seen FROM images "
        "WHERE family = ? ORDER BY first_seen DESC, updated DESC, name DESC", (page,)).fetchall()
    regions = sorted({r for m in members for r in json.loads(m[3])})
    newest = next((m[0] for m in members if m[1] and m[2] is not None), None)
    [sample] = _records(store, "SELECT record FROM images WHERE key = ?", (members[0][0],))
    family = site.family_meta(site.family_key(sample), regions, len(members), members[-1][4],
                              members[0][4])
    order = "ORDER BY first_seen DESC, updated DESC, name DESC"
    rows = (site.place_row(row, json.loads(amis), regions, key == newest)
            for key, row, amis in store.db.execute(
                f"SELECT key, row, amis FROM images WHERE family = ? {order}", (page,)))
    cards = (c for (c,) in store.db.execute(
        f"SELECT card FROM images WHERE family = ? {order}", (page,)))
    site.history_page(out, env, frame, family, rows, cards)
