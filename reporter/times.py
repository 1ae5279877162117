"""Times as the report shows them to people: "2026-12-03 00:42 UTC" (always UTC, to the minute).

Machine-readable outputs keep ISO 8601 (``2026-12-03T00:42:17Z``); pages put that ISO time in a
``<time datetime>`` beside the readable one.
"""

from __future__ import annotations

import datetime as dt

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
READABLE_FORMAT = "%Y-%m-%d %H:%M UTC"


def iso(ts: float) -> str:
    """The ISO 8601 UTC time of a POSIX timestamp, to the second."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime(ISO_FORMAT)


def readable(value: float | str | None) -> str:
    """A POSIX timestamp or an ISO time (as written by ``iso``) as people read it.

    Anything else comes back as it was (history may hold odd values; the page still shows them).
    """
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC).strftime(READABLE_FORMAT)
    try:
        when = dt.datetime.strptime(str(value), ISO_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return str(value)
    return when.strftime(READABLE_FORMAT)
