"""The fold's state between runs: an SQLite database beside the report (``.DIR.state.sqlite``).

A run reads and writes only the images its new messages touch: each image is one row holding its
registers (the fold's ``ImageState``, JSON) and what was rendered from it last time (its
images.json entry, its card and history-table row for the HTML pages, its simplestreams
versions, and the columns the pages are assembled by). The run's counters, the msg ids of the
overlap window and the checkpoint are in ``meta``.

Consistency with the published DIR: a run changes the database inside one transaction and
commits only after the new DIR is in place. A run killed before the commit leaves the previous
state, which is older than (or as old as) the site; the next run reads history again from that
older checkpoint, and because the fold is a function of the message set, it arrives at the same
state and renders again every page the killed run had rendered. A full run builds a new database
under a temporary name and renames it into place after publishing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from reporter import containers
from reporter.fold import FoldState, ImageState
from shared.files import fsync_path

log = logging.getLogger(__name__)

SCHEMA = "fedimg.report-store/2"  # a new layout gets a new name: the first run is full

_TABLES = """
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE images (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,          -- the fold's registers (ImageState as JSON)
    record TEXT,                  -- its images.json entry, one line
    name TEXT, release TEXT, subvariant TEXT, arch TEXT, channel TEXT, cloud TEXT,
    first_seen TEXT, updated TEXT, arrived TEXT,
    reads INTEGER,                -- 1 when the name reads as an image name by itself
    family TEXT,                  -- its history page (site.family_page), or NULL
    regions TEXT,                 -- JSON list of the EC2 regions shown for it
    amis TEXT,                    -- JSON {region: AMI} for its history-table row
    card TEXT,                    -- its card (image.html), the root left as a placeholder
    row TEXT,                     -- its history-table row, the family's columns left as a slot
    product TEXT, sbase TEXT, aws_version TEXT, dl_version TEXT,  -- simplestreams or NULL
    containers TEXT               -- its container registers (JSON) when it has any
);
CREATE INDEX images_release ON images (release, channel, first_seen, updated, name);
CREATE INDEX images_family ON images (family, first_seen, updated, name);
CREATE INDEX images_product ON images (product, first_seen, name);
CREATE INDEX images_arrived ON images (arrived, name);
CREATE INDEX images_channel_arrived ON images (channel, arrived, name);
"""


def path_for(directory: Path) -> Path:
    """Where the state of the report in ``directory`` lives: beside it, hidden."""
    return directory.parent / f".{directory.name}.state.sqlite"


def state_to_row(img: ImageState) -> str:
    # ensure_ascii: whatever history wrote stays representable as SQLite text
    return json.dumps([img.name, img.derived, img.first_seen, img.updated, img.channel,
                       img.identity, img.source, img.regs], separators=(",", ":"))


def state_from_row(text: str) -> ImageState:
    name, derived, first, updated, channel, identity, source, regs = json.loads(text)
    return ImageState(name=name, derived=derived, first_seen=first, updated=updated,
                      channel=channel, identity=identity, source=source, regs=regs)


def _containers(img: ImageState) -> str | None:
    regs = img.regs.get(containers.FIELD)
    return None if regs is None else json.dumps(regs, separators=(",", ":"))


class Store:
    """One open state database; ``fresh`` starts an empty one under a temporary name."""

    def __init__(self, path: Path, fresh: bool) -> None:
        self.path = path
        self.fresh = fresh
        self.file = path.with_name(f"{path.name}.new-{os.getpid()}") if fresh else path
        if fresh:
            with contextlib.suppress(FileNotFoundError):
                self.file.unlink()
        # isolation_level=None: transactions are ours (BEGIN ... COMMIT around the whole run)
        self.db = sqlite3.connect(self.file, isolation_level=None)
        try:
            self.db.execute("PRAGMA cache_size = -65536")  # 64 MiB of page cache at most
            if fresh:
                # the file is renamed into place only when complete
                self.db.execute("PRAGMA journal_mode = OFF")
                self.db.execute("PRAGMA synchronous = OFF")
                self.db.executescript(_TABLES)
                self.db.execute("BEGIN")
                self.set_meta(schema=SCHEMA)
            else:
                self.db.execute("BEGIN")
        except BaseException:
            self.db.close()
            raise

    # ---- meta -----------------------------------------------------------------------------------

    def meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, **values: Any) -> None:
        self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                            [(k, json.dumps(v, sort_keys=True)) for k, v in values.items()])

    # ---- fold state -----------------------------------------------------------------------------

    def load(self, key: str) -> ImageState | None:
        row = self.db.execute("SELECT state FROM images WHERE key = ?", (key,)).fetchone()
        return None if row is None else state_from_row(row[0])

    def save(self, images: dict[str, ImageState]) -> None:
        """Write the registers of ``images`` (what the rendering of this run starts from)."""
        self.db.executemany(
            "INSERT INTO images (key, state, containers) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET state = excluded.state, "
            "containers = excluded.containers",
            ((k, state_to_row(img), _containers(img)) for k, img in images.items()))

    def states(self, keys: Iterable[str]) -> Iterator[tuple[str, ImageState]]:
        for key in keys:
            img = self.load(key)
            if img is not None:
                yield key, img

    def keys(self) -> list[str]:
        return [k for (k,) in self.db.execute("SELECT key FROM images")]

    def checkpoint(self, state: FoldState, source: str, overlap: float) -> None:
        """The run's counters and the ids of the overlap window (older ones are never read
        again)."""
        horizon = (state.last_timestamp or 0.0) - overlap
        self.set_meta(source=source, overlap=overlap, read=state.read, skipped=state.skipped,
                      last_timestamp=state.last_timestamp,
                      seen={i: ts for i, ts in state.seen.items() if ts >= horizon})

    def fold_state(self) -> FoldState:
        """The counters and overlap ids of the last run; images are loaded when touched."""
        last = self.meta("last_timestamp")
        return FoldState(seen={str(k): float(v) for k, v in self.meta("seen", {}).items()},
                         read=int(self.meta("read", 0)), skipped=int(self.meta("skipped", 0)),
                         last_timestamp=None if last is None else float(last), load=self.load)

    # ---- the end of a run -----------------------------------------------------------------------

    def commit(self) -> None:
        """Make this run's state the checkpoint (call after the new DIR is in place)."""
        self.db.execute("COMMIT")
        self.db.close()
        if self.fresh:
            fsync_path(self.file)  # written without syncing: once, here, before it counts
            os.replace(self.file, self.path)
            fsync_path(self.path.parent)

    def abandon(self) -> None:
        """Leave the previous state as it was."""
        with contextlib.suppress(sqlite3.Error):
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
        self.db.close()
        if self.fresh:
            with contextlib.suppress(FileNotFoundError):
                self.file.unlink()


def open_previous(path: Path, source: str) -> Store | None:
    """The state of the previous run, or None (full run) with one line saying why."""
    if not path.exists():
        return None
    try:
        store = Store(path, fresh=False)
    except sqlite3.Error as e:
        log.warning("the state store %s cannot be opened (%s): full run", path, e)
        return None
    try:
        schema, saved_source = store.meta("schema"), store.meta("source")
    except (sqlite3.Error, ValueError) as e:
        store.abandon()
        log.warning("the state store %s cannot be read (%s): full run", path, e)
        return None
    if schema != SCHEMA:
        store.abandon()
        log.warning("the state store %s is %r, not %s: full run", path, schema, SCHEMA)
        return None
    if saved_source != source:
        store.abandon()
        log.info("the previous run read %s, this run reads %s: full run", saved_source, source)
        return None
    return store


def leftovers(path: Path) -> None:
    """Remove databases of full runs that were killed before renaming theirs into place."""
    for stale in path.parent.glob(f"{path.name}.new-*"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
