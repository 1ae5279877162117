"""Checked readers for values taken from message history: type, size and character set.

History is text that anyone able to publish on the bus (or to write into datanommer) shapes,
and every value of it ends up in JSON files, file names, HTML and simplestreams. Each reader
here accepts one kind of value and nothing else, so the message families (families.py) read
every field through exactly one of them:

- identifiers (image names, regions, AMIs, formats, test suites, tags ...) must fully match an
  ASCII pattern with a length bound: nothing else can reach a file name, a "latest" entry or an
  attribute; a value that does not match makes the row unreadable (``Unreadable``);
- free text (error messages, notes, agents) is cut to a length and loses what cannot be shown
  safely: lone surrogates (not encodable as UTF-8), control characters and the invisible
  formatting characters (bidi overrides such as U+202E, zero-width marks) become U+FFFD;
- integers are bounded (a size of 10**400 is no size), lists are bounded in length and must be
  lists (a string is not a list of registries), objects must be objects.

``Unreadable`` messages show values through ``show``: a short repr, which escapes surrogates and
formatting characters, so a log line is always one printable line.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable
from typing import Any, TypeVar

from shared.errors import Unreadable

T = TypeVar("T")

MAX_TEXT = 2000  # free text (errors, notes) is cut here: history must not bloat the site
MAX_INT = 2**53  # larger integers are no size or id of ours (and JavaScript cannot hold them)
MAX_ITEMS = 64  # list fields (regions, tags, registries, arches) hold no more than this

IMAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}", re.ASCII)
AMI = re.compile(r"ami-[0-9a-f]{3,40}", re.ASCII)
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}", re.ASCII)
SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}", re.ASCII)
# what may name a destination of a failure: a region, a format, a file name, a bucket path
DESTINATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+\-]{0,99}", re.ASCII)
SUITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:/()+\-]{0,99}", re.ASCII)
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}", re.ASCII)  # OCI tag grammar
REGISTRY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/\-]{0,199}", re.ASCII)
CLOUD_REGION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,62}", re.ASCII)  # Azure / GCP locations
RESOURCE_ID = re.compile(r"/?[A-Za-z0-9._\-]+(?:/[A-Za-z0-9._\-]+){0,30}", re.ASCII)
# RFC 3986 characters only (no quotes, spaces, angle brackets, backslashes, nothing non-ASCII),
# and only http(s): a "javascript:" URL would survive HTML escaping inside an href
URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&()*+,;=%]{1,2000}", re.ASCII)

# repr escapes lone surrogates and formatting characters; these bounds keep it one short line
class _Shown(reprlib.Repr):
    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = 60
        self.maxlist = self.maxdict = 4
        self.maxlevel = 2

    def repr_int(self, x: int, level: int) -> str:
        # repr of an integer of more than 4300 digits raises (Python's conversion limit)
        return f"<an integer of {x.bit_length()} bits>" if x.bit_length() > 128 else repr(x)


_REPR = _Shown()

# Lone surrogates, C0/C1 controls (tab and newline are kept) and invisible formatting characters
# (zero-width marks, bidi embeddings/overrides/isolates, word joiners, BOM).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
    "\ufff9-\ufffb\ud800-\udfff]"
)


class Oversized:
    """Stands in for a JSON integer of more digits than Python converts (see history.parse_json).

    It is no int, so every reader here refuses it like any other value of the wrong type.
    """

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"<an integer of {self.digits} digits>"


def show(value: Any) -> str:
    """A short, printable, one-line rendering of any value for a log line."""
    return _REPR.repr(value)


def text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """Free text cut to ``limit`` characters with unsafe characters replaced; None if no string."""
    if not isinstance(value, str):
        return None
    return _UNSAFE.sub("\ufffd", value[:limit])


def matching(value: Any, pattern: re.Pattern[str], what: str) -> str:
    """``value`` when it is a string that fully matches ``pattern``; Unreadable otherwise."""
    if isinstance(value, str) and pattern.fullmatch(value):
        return value
    raise Unreadable(f"{what} is {show(value)}, expected {_expected(pattern)}")


def optional(value: Any, read: Callable[[Any], T]) -> T | None:
    """None for a missing (null) value, else ``read(value)``."""
    return None if value is None else read(value)


def integer(value: Any, what: str, required: bool = False) -> int | None:
    """A non-negative integer below MAX_INT (booleans are not integers)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_INT:
        return value
    if value is None and not required:
        return None
    raise Unreadable(f"{what} is {show(value)}, expected a non-negative integer below 2**53")


def obj(value: Any, what: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise Unreadable(f"{what} is {show(value)}, expected an object")


def items(value: Any, what: str, read: Callable[[Any], T], *, null: bool = False,
          empty: bool = True, limit: int = MAX_ITEMS) -> list[T]:
    """A list of at most ``limit`` items, each read with ``read``; with ``null``, null is []."""
    if value is None and null:
        return []
    if not isinstance(value, list) or len(value) > limit or (not value and not empty):
        raise Unreadable(f"{what} is {show(value)}, expected a list of at most {limit} items"
                         + ("" if empty else " (not empty)"))
    return [read(v) for v in value]


def mapping(value: Any, what: str, *, limit: int = MAX_ITEMS) -> list[tuple[Any, Any]]:
    """The (key, value) pairs of a non-empty object of at most ``limit`` entries, sorted."""
    if not isinstance(value, dict) or not value or len(value) > limit:
        raise Unreadable(f"{what} is {show(value)}, expected an object of 1 to {limit} entries")
    return sorted(value.items())


_DESCRIPTIONS = {
    IMAGE_NAME: "an image name (ASCII letters, digits, . _ + -)",
    AMI: "an AMI id",
    REGION: "an EC2 region",
    SHA256: "a sha256 hex digest",
    URL: "an http(s) URL",
}


def _expected(pattern: re.Pattern[str]) -> str:
    return _DESCRIPTIONS.get(pattern, f"a string matching {pattern.pattern[:40]}")
