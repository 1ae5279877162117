"""Read message history from datagrepper's /raw, politely and completely.

datagrepper 1.1.0 facts this client is built around (see /work/shared/local-stack.md):
- every request runs a full COUNT and paging is OFFSET-based, so deep pages are expensive:
  a time window with more than ``max_pages`` pages is split in two and each half asked again;
  windows also start no longer than ``window_days``;
- ``start``/``end`` are inclusive at both ends (halves share their middle second; rows are
  de-duplicated by msg_id); ``end`` alone is silently ignored and ``start=0`` disables the
  window, so both are always sent and start is never 0;
- the default order is desc and rows of the same second come back in arbitrary order: we send
  order=asc and sort by (timestamp, msg_id) ourselves;
- when pages == 1 the ``total`` field counts only this page, so ``pages`` drives paging;
- the JSON Content-Type echoes the Accept header: we send Accept: application/json;
- production gives up after 60 s: our per-request timeout is lower (reporter.timeout) and
  5xx, timeouts, connection errors, broken JSON and short pages are retried a bounded number of
  times with exponential backoff. Anything still failing ends the run (HistoryError).

Requests for different windows run concurrently (reporter.concurrency threads).
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import cachetools
import requests

from shared.errors import HistoryError

log = logging.getLogger(__name__)

CATEGORIES = ("fedimg", "fedora_image_uploader")
ROWS_PER_PAGE = 100  # datagrepper's maximum
DAY = 86400.0


class _Retryable(Exception):
    pass


@dataclass(frozen=True)
class Window:
    category: str
    start: float
    end: float


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    splits: int = 0


class History:
    """A datagrepper /raw reader. ``fetch(start, end)`` returns every row of CATEGORIES."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 50,
        retries: int = 4,
        concurrency: int = 4,
        max_pages: int = 5,
        window_days: float = 90,
        backoff: float = 1.0,
        categories: Iterable[str] = CATEGORIES,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.concurrency = max(1, concurrency)
        self.max_pages = max(1, max_pages)
        self.window = window_days * DAY
        self.backoff = backoff
        self.categories = tuple(categories)
        self.session = session or requests.Session()
        self.session.headers["Accept"] = "application/json"
        self.session.headers.setdefault("User-Agent", "fedimg-report")
        self.stats = Stats()
        # A page of a window that is entirely in the past never changes within a run; the memo
        # spares a second request when the same page is needed again (e.g. a retried window).
        self._pages: cachetools.LRUCache = cachetools.LRUCache(maxsize=256)
        self._lock = threading.Lock()
        self._abort = threading.Event()  # set when the run has failed: stop asking

    # ---- one request ----------------------------------------------------------------------------

    def _get_once(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.stats.requests += 1
        try:
            resp = self.session.get(f"{self.base_url}/raw", params=params, timeout=self.timeout)
        except (requests.Timeout, requests.ConnectionError) as e:
            raise _Retryable(f"{type(e).__name__}: {e}") from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _Retryable(f"HTTP {resp.status_code}: {resp.text[:200]!r}")
        if resp.status_code != 200:
            raise HistoryError(f"datagrepper answered HTTP {resp.status_code} to /raw {params}: "
                               f"{resp.text[:200]!r}")
        try:
            data = resp.json()
        except (ValueError, json.JSONDecodeError) as e:
            raise _Retryable(f"broken JSON ({e})") from None
        except requests.RequestException as e:  # body cut off while streaming
            raise _Retryable(f"{type(e).__name__}: {e}") from None
        if not (isinstance(data, dict) and isinstance(data.get("raw_messages"), list)
                and isinstance(data.get("pages"), int)):
            raise _Retryable(f"unexpected /raw answer: {str(data)[:200]}")
        return data

    def page(self, window: Window, page: int, fresh: bool = False) -> dict[str, Any]:
        """One page of a window, with bounded retries and exponential backoff with jitter.

        A page that is not the last must be full (100 rows); a short one is retried too.
        """
        params = {
            "category": window.category,
            "start": window.start,
            "end": window.end,
            "order": "asc",
            "rows_per_page": ROWS_PER_PAGE,
            "page": page,
        }
        key = tuple(sorted(params.items()))
        with self._lock:
            if key in self._pages and not fresh:
                return self._pages[key]
        for attempt in range(self.retries + 1):
            if self._abort.is_set():
                raise HistoryError("aborted: another request of this run failed")
            try:
                data = self._get_once(params)
                want = _rows_expected(data, page)
                got = len(data["raw_messages"])
                if want is not None and got != want:
                    raise _Retryable(f"page {page}/{data['pages']} has {got} rows, "
                                     f"expected {want}")
                break
            except _Retryable as e:
                if attempt == self.retries:
                    raise HistoryError(
                        f"datagrepper {self.base_url}/raw failed {attempt + 1} times for "
                        f"{window.category} {window.start:.0f}..{window.end:.0f} page {page}: {e}"
                    ) from None
                delay = self.backoff * (2**attempt) * (0.5 + random.random() / 2)
                log.warning("datagrepper: %s; retry %d/%d in %.1fs", e, attempt + 1,
                            self.retries, delay)
                with self._lock:
                    self.stats.retries += 1
                time.sleep(delay)
        if window.end < time.time() - 300:
            with self._lock:
                self._pages[key] = data
        return data

    # ---- windows --------------------------------------------------------------------------------

    def windows(self, start: float, end: float) -> list[Window]:
        """Initial windows: each category, [start, end] cut into pieces of at most window_days."""
        start = max(start, 1.0)  # start=0 would disable datagrepper's time filter
        n = max(1, math.ceil((end - start) / self.window))
        step = (end - start) / n
        edges = [start + i * step for i in range(n)] + [end]
        return [Window(c, edges[i], edges[i + 1]) for c in self.categories for i in range(n)]

    def fetch(self, start: float, end: float) -> list[dict[str, Any]]:
        """Every row in [start, end] (inclusive), sorted by (timestamp, msg_id), no duplicates."""
        rows: dict[str, dict[str, Any]] = {}
        self._abort.clear()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="datagrepper") as pool:
            pending: dict[Future, tuple[str, Window, int]] = {}
            expected: dict[Window, int] = {}  # window -> pages its first page announced
            restarts: dict[Window, int] = {}

            def first_page(w: Window, fresh: bool = False) -> None:
                pending[pool.submit(self.page, w, 1, fresh)] = ("first", w, 1)

            for w in self.windows(start, end):
                first_page(w)
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        kind, w, page = pending.pop(fut)
                        data = fut.result()  # HistoryError propagates: the run fails
                        if kind == "first" and data["pages"] > self.max_pages and \
                                w.end - w.start >= 2.0:
                            # too deep for OFFSET paging: split the window (halves share mid)
                            mid = math.floor((w.start + w.end) / 2)
                            with self._lock:
                                self.stats.splits += 1
                            first_page(Window(w.category, w.start, mid))
                            first_page(Window(w.category, mid, w.end))
                            continue
                        if kind == "more" and data["pages"] != expected[w]:
                            # rows arrived in (or left) the window while paging: OFFSET pages
                            # shifted, so read the window again (rows are de-duplicated)
                            restarts[w] = restarts.get(w, 0) + 1
                            if restarts[w] > self.retries:
                                raise HistoryError(
                                    f"{w.category} {w.start:.0f}..{w.end:.0f} kept changing "
                                    f"while being read ({restarts[w]} attempts)")
                            log.warning("datagrepper window %s changed while paging; rereading", w)
                            first_page(w, fresh=True)
                        for row in data["raw_messages"]:
                            _keep(rows, row)
                        if kind == "first":
                            expected[w] = data["pages"]
                            for p in range(2, data["pages"] + 1):
                                pending[pool.submit(self.page, w, p, True)] = ("more", w, p)
            except BaseException:
                self._abort.set()
                for fut in pending:
                    fut.cancel()
                raise
        return sorted(rows.values(), key=_order)


def _rows_expected(data: dict[str, Any], page: int) -> int | None:
    """Rows a page must hold: full pages before the last; the rest of ``total`` on the last.

    ``total`` is only trustworthy when pages > 1 (datagrepper's pages == 1 quirk).
    """
    pages, total = data["pages"], data.get("total")
    if page < pages:
        return ROWS_PER_PAGE
    if page == pages and pages > 1 and isinstance(total, int):
        return total - ROWS_PER_PAGE * (pages - 1)
    return None


def _keep(rows: dict[str, dict[str, Any]], row: Any) -> None:
    if not isinstance(row, dict):
        return  # the fold would have to skip it anyway; nothing to de-duplicate it by
    msg_id = row.get("msg_id")
    key = msg_id if isinstance(msg_id, str) else json.dumps(row, sort_keys=True, default=str)
    rows.setdefault(key, row)


def _order(row: dict[str, Any]) -> tuple[float, str]:
    ts = row.get("timestamp")
    ts = float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else float("-inf")
    msg_id = row.get("msg_id")
    return ts, msg_id if isinstance(msg_id, str) else ""
