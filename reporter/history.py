"""Read message history from datagrepper's /raw, politely and completely.

datagrepper 1.1.0 facts this client is built around (measured on a real datagrepper):
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
- production gives up after 60 s: our per-request timeout is lower (reporter.timeout).

Retries follow the one HTTP policy of ``shared.http``: the session retries 5xx/429, timeouts and
connection errors; broken JSON, a body cut off and a page shorter than it must be are asked
again here. Each is bounded by ``retries``; anything still failing ends the run (HistoryError).

Requests for different windows run concurrently (reporter.concurrency threads).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import cachetools
import requests

from reporter.times import readable
from shared import http as shared_http
from shared.errors import HistoryError
from shared.http import GaveUp, IncompleteAnswer, RetryNote, problem_of, retry_incomplete

log = logging.getLogger(__name__)

CATEGORIES = ("fedimg", "fedora_image_uploader")
ROWS_PER_PAGE = 100  # datagrepper's maximum
DAY = 86400.0
USER_AGENT = "fedimg-report"




@dataclass(frozen=True)
class Window:
    category: str
    start: float
    end: float


@dataclass
class Stats:
    requests: int = 0  # every HTTP attempt, the session's retries included
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.concurrency = max(1, concurrency)
        self.max_pages = max(1, max_pages)
        self.window = window_days * DAY
        self.backoff = backoff
        self.categories = tuple(categories)
        self.session = shared_http.session(USER_AGENT, timeout=timeout, retries=retries,
                                           backoff=backoff, on_retry=self._transport_retry)
        self.session.headers["Accept"] = "application/json"
        self.stats = Stats()
        # A page of a window that is entirely in the past never changes within a run; the memo
        # spares a second request when the same page is needed again (e.g. a retried window).
        self._pages: cachetools.LRUCache = cachetools.LRUCache(maxsize=256)
        self._lock = threading.Lock()
        self._abort = threading.Event()  # set when the run has failed: stop asking
        self._attempts = threading.local()  # HTTP attempts of the page this thread is reading

    # ---- one request ----------------------------------------------------------------------------

    def _count_request(self) -> None:
        self._attempts.n = getattr(self._attempts, "n", 0) + 1
        with self._lock:
            self.stats.requests += 1

    def _transport_retry(self, note: RetryNote) -> None:
        """The session is about to send a request again (5xx, timeout, connection error)."""
        self._count_request()
        self._content_retry(note)

    def _content_retry(self, note: RetryNote) -> None:
        with self._lock:
            self.stats.retries += 1
        log.warning("datagrepper %s: reading %s: %s", self.base_url,
                    getattr(self._attempts, "where", "/raw"), note)

    def _failed(self, where: str, problem: str) -> HistoryError:
        return HistoryError(f"datagrepper {self.base_url}/raw failed "
                            f"{getattr(self._attempts, 'n', 0)} times for {where}: {problem}")

    def _get_once(self, params: dict[str, Any], where: str) -> dict[str, Any]:
        self._count_request()
        try:
            resp = self.session.get(f"{self.base_url}/raw", params=params, stream=True)
        except requests.RequestException as e:  # the session has retried it already
            raise self._failed(where, problem_of(e)) from None
        try:
            body = resp.content
        except requests.RequestException as e:  # body cut off while streaming
            raise IncompleteAnswer(f"{type(e).__name__}: {e}") from None
        finally:
            resp.close()
        if resp.status_code != 200:
            raise self._failed(where, f"HTTP {resp.status_code} to /raw {params}: {body[:200]!r}")
        try:
            data = json.loads(body)
        except ValueError as e:
            raise IncompleteAnswer(f"broken JSON ({e})") from None
        if not (isinstance(data, dict) and isinstance(data.get("raw_messages"), list)
                and isinstance(data.get("pages"), int)):
            raise IncompleteAnswer(f"unexpected /raw answer: {str(data)[:200]}")
        return data

    def page(self, window: Window, page: int, fresh: bool = False) -> dict[str, Any]:
        """One page of a window, asked again (a bounded number of times) until it is complete.

        A page that is not the last must be full (100 rows); a short one is asked again too.
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
        where = f"{window.category} {readable(window.start)} .. {readable(window.end)} page {page}"

        def attempt() -> dict[str, Any]:
            if self._abort.is_set():
                raise HistoryError("aborted: another request of this run failed")
            data = self._get_once(params, where)
            want = _rows_expected(data, page)
            got = len(data["raw_messages"])
            if want is not None and got != want:
                raise IncompleteAnswer(f"page {page}/{data['pages']} has {got} rows, "
                                       f"expected {want}")
            return data

        self._attempts.n = 0
        self._attempts.where = where
        try:
            data = retry_incomplete(attempt, what=f"datagrepper {where}",
                                    attempts=self.retries + 1, backoff=self.backoff,
                                    on_retry=self._content_retry)
        except GaveUp as e:
            raise self._failed(where, str(e.__cause__)) from None
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

            # the first window alone first: a datagrepper that is down costs one window's retries
            later = self.windows(start, end)
            first_page(later.pop(0))
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
                        while later:
                            first_page(later.pop(0))
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
