"""Why an image's entry looks the way it does: the messages that made it, and those that did not.

The first question when an image is missing from the report, or lacks a region, is "which
messages mentioned it, and what became of each?". `explain` answers it from the same rows the
fold reads: every row whose observations name the image is "used" (with what it set); every
other row whose topic or body mentions the name (without regard to case) is "not used", with
the reason — it could not be read, or it was read as another image.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reporter.families import Unreadable, read_row
from reporter.fields import show, text
from reporter.fold import image_key, iso, row_key

__all__ = ["Mention", "explain", "render"]


@dataclass(frozen=True)
class Mention:
    """One history row about the image: used for its entry or not, and why."""

    timestamp: float
    msg_id: str
    topic: str
    used: bool
    detail: str  # what it set when used; the reason when not


def _mentions(row: dict[str, Any], key: str) -> bool:
    text = json.dumps([row.get("topic"), row.get("msg")], default=repr).casefold()
    return key in text


def _sets(obs_sets: tuple[tuple[str, str, Any], ...]) -> str:
    words = [f"{field}[{k}]" if k else field for field, k, _ in obs_sets]
    return "sets " + ", ".join(words) if words else "identity only (no result carried)"


def explain(rows: Iterable[dict[str, Any]], name: str) -> list[Mention]:
    """Every row that made or mentioned image `name`, oldest first (duplicates once)."""
    key = image_key(name)
    seen: set[str] = set()
    out: list[Mention] = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        try:
            ts, msg_id = row_key(row)
        except Unreadable as exc:
            if _mentions(row, key):
                out.append(Mention(float("-inf"), show(row.get("msg_id")), show(row.get("topic")),
                                   False, f"not readable: {exc}"))
            continue
        if msg_id in seen:
            continue
        seen.add(msg_id)
        topic = text(row.get("topic"), 255) or ""
        try:
            observations = read_row(row)
        except Unreadable as exc:
            if _mentions(row, key):
                out.append(Mention(ts, msg_id, topic, False, f"not readable: {exc}"))
            continue
        mine = [o for o in observations if image_key(o.name) == key]
        if mine:
            detail = "; ".join(_sets(o.sets) for o in mine)
            out.append(Mention(ts, msg_id, topic, True, detail))
        elif _mentions(row, key):
            others = ", ".join(sorted({o.name for o in observations})) or "no image"
            out.append(Mention(ts, msg_id, topic, False, f"read as {others}"))
    out.sort(key=lambda m: (m.timestamp, m.msg_id))
    return out


def render(name: str, mentions: list[Mention]) -> str:
    """Plain text for an operator: a header, then one line per message."""
    used = sum(m.used for m in mentions)
    lines = [f"{name}: {used} message(s) made its entry, {len(mentions) - used} mentioned it "
             "but were not used"]
    for m in mentions:
        when = iso(m.timestamp) if m.timestamp != float("-inf") else "no time"
        lines.append(f"{'used    ' if m.used else 'not used'} {when} {m.msg_id} {m.topic}: "
                     f"{m.detail}")
    return "\n".join(lines)
