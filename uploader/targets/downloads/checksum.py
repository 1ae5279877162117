"""Fedora-style CHECKSUM files: read, merge, render; and streaming sha256 of a file.

Fedora publishes one CHECKSUM per directory, e.g.

    # Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2: 491716608 bytes
    SHA256 (Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2) = 6205ae0c...

`sha256sum -c CHECKSUM` accepts this (BSD-style tagged lines; `#` lines are comments). Release
engineering may clearsign the file later; a signature cannot survive a rewrite, so parsing skips
the PGP armour and rendering writes the plain (unsigned) form.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

CHECKSUM_NAME = "CHECKSUM"

_SIZE_LINE = re.compile(r"^# (?P<name>[^/\n]+): (?P<size>\d+) bytes$")
_SHA_LINE = re.compile(r"^SHA256 \((?P<name>[^/\n]+)\) = (?P<hex>[0-9a-fA-F]{64})$")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One file of a CHECKSUM: its name (no directory), sha256 and, where recorded, its size."""

    name: str
    sha256: str
    size: int | None = None


def parse(text: str) -> dict[str, Entry]:
    """Entries of a CHECKSUM text by file name. Lines that are not ours (PGP armour, other
    algorithms, blank lines) are ignored; a SHA256 line without a size comment keeps size None."""
    sizes: dict[str, int] = {}
    entries: dict[str, Entry] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if m := _SIZE_LINE.match(line):
            sizes[m["name"]] = int(m["size"])
        elif m := _SHA_LINE.match(line):
            name = m["name"]
            entries[name] = Entry(name=name, sha256=m["hex"].lower(), size=sizes.get(name))
    return entries


def merge(existing: dict[str, Entry], new: Iterable[Entry], present: set[str] | None = None
          ) -> dict[str, Entry]:
    """Existing entries (only those whose file is still `present`, when that is known) with the
    new ones replacing entries of the same name."""
    merged = {
        name: e for name, e in existing.items() if present is None or name in present
    }
    for entry in new:
        merged[entry.name] = entry
    return merged


def render(entries: dict[str, Entry]) -> str:
    """The CHECKSUM text, sorted by file name (stable output: a rewrite with the same entries
    gives the same bytes)."""
    lines = []
    for name in sorted(entries):
        e = entries[name]
        if e.size is not None:
            lines.append(f"# {name}: {e.size} bytes")
        lines.append(f"SHA256 ({name}) = {e.sha256}")
    return "".join(line + "\n" for line in lines)
