"""A tiny fedora-messaging consumer callback for harness tests.

Why: to prove that a real ``fedora-messaging consume`` subprocess, configured by the harness,
receives what the test publishes. It appends one JSON line per message (id, topic, body,
headers) to the file named by $FEDIMG_ECHO_FILE; the test reads that file.
"""

from __future__ import annotations

import json
import os
from typing import Any

ECHO_FILE_ENV = "FEDIMG_ECHO_FILE"


class Echo:
    """fedora-messaging callback class: instantiated once by ``consume``, called per message."""

    def __init__(self) -> None:
        self.path = os.environ[ECHO_FILE_ENV]

    def __call__(self, message: Any) -> None:
        """Record the message; flushed and fsynced so the test sees it immediately."""
        record = {
            "id": message.id,
            "topic": message.topic,
            "body": message.body,
            "headers": message._headers,
        }
        with open(self.path, "a", encoding="utf-8") as fd:
            fd.write(json.dumps(record, default=str) + "\n")
            fd.flush()
            os.fsync(fd.fileno())


def read_echo_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records written so far by ``Echo`` (empty if the file does not exist yet)."""
    try:
        with open(path, encoding="utf-8") as fd:
            return [json.loads(line) for line in fd if line.strip()]
    except FileNotFoundError:
        return []
