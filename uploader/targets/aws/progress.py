"""Progress lines at a fixed interval: the one-shot CLI shows them, the service logs them.

A plain INFO log line every `interval` seconds (aws.progress_interval) rather than a terminal
progress bar, so the same output works under systemd/journald and on a terminal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class Ticker:
    """Calls `report()` (which returns a line) at most once per interval, from any thread."""

    def __init__(self, log: logging.Logger, interval: float, report: Callable[[], str],
                 clock: Callable[[], float] = time.monotonic):
        self.log = log
        self.interval = max(0.0, interval)
        self.report = report
        self.clock = clock
        self._next = clock() + self.interval
        self._lock = threading.Lock()

    def tick(self, force: bool = False) -> bool:
        now = self.clock()
        with self._lock:
            if not force and now < self._next:
                return False
            self._next = now + self.interval
        self.log.info("%s", self.report())
        return True


class UploadProgress:
    """Counts blocks and bytes of a snapshot upload, thread-safely."""

    def __init__(self, name: str, candidate_blocks: int, image_size: int):
        self.name = name
        self.candidate_blocks = candidate_blocks
        self.image_size = image_size
        self.blocks = 0
        self.bytes = 0
        self.skipped_zero = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def sent(self, nbytes: int) -> None:
        with self._lock:
            self.blocks += 1
            self.bytes += nbytes

    def zero(self) -> None:
        with self._lock:
            self.skipped_zero += 1

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        mib = self.bytes / 2**20
        done = self.blocks + self.skipped_zero
        return (f"{self.name}: {done}/{self.candidate_blocks} data blocks read, {self.blocks} "
                f"uploaded ({mib:.0f} MiB of a {self.image_size / 2**20:.0f} MiB image), "
                f"{self.skipped_zero} all-zero skipped, {mib / elapsed:.1f} MiB/s")
