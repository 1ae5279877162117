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

Requests for different windows run concurrently (reporter.concurrency threads). How windows are
split, what bounds the requests, and when a window's pages are believed together:
reporter.paging. Redirects to another scheme://host:port are refused (the session policy).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import cachetools
import requests

from reporter.fields import Oversized, show
from reporter.paging import Window, row_identity, walk
from reporter.times import readable
from shared import http as shared_http
from shared.errors import HistoryError
from shared.http import GaveUp, IncompleteAnswer, RetryNote, problem_of, retry_incomplete

log = logging.getLogger(__name__)

CATEGORIES = ("fedimg", "fedora_image_uploader")
ROWS_PER_PAGE = 100  # datagrepper's maximum
DAY = 86400.0
USER_AGENT = "fedimg-report"
FUTURE_SKEW = 300.0  # seconds a row may be dated after "now" (clocks differ); later is set aside




@dataclass
class Stats:
    requests: int = 0  # every HTTP attempt, the session's retries included
    retries: int = 0
    splits: int = 0
    future: int = 0  # rows dated after now (+ FUTURE_SKEW), set aside


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
                                           backoff=backoff, on_retry=self._transport_retry,
                                           same_origin_redirects=True)
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
            data = parse_json(body)
        except (ValueError, RecursionError) as e:
            raise IncompleteAnswer(f"broken JSON ({e})") from None
        if not (isinstance(data, dict) and isinstance(data.get("raw_messages"), list)
                and len(data["raw_messages"]) <= ROWS_PER_PAGE
                and isinstance(data.get("pages"), int) and not isinstance(data["pages"], bool)):
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

    def stream(self, start: float, end: float) -> Iterator[list[Any]]:
        """The rows of [start, end] window by window, each window complete and consistent
        (see reporter.paging); rows dated after ``end`` + FUTURE_SKEW are set aside, with a
        warning, and counted in ``stats.future``."""
        self._abort.clear()
        yield from walk(
            self.page, self.windows(start, end), max_pages=self.max_pages, retries=self.retries,
            horizon=end + FUTURE_SKEW, concurrency=self.concurrency, on_split=self._split,
            on_future=self._future, abort=self._abort.set)

    def fetch(self, start: float, end: float) -> list[dict[str, Any]]:
        """Every row in [start, end] (inclusive), sorted by (timestamp, msg_id), no duplicates."""
        rows: dict[str, Any] = {}
        for window in self.stream(start, end):
            for row in window:
                rows.setdefault(row_identity(row), row)
        return sorted(rows.values(), key=_order)

    def _split(self) -> None:
        with self._lock:
            self.stats.splits += 1

    def _future(self, row: Any) -> None:
        with self._lock:
            self.stats.future += 1
        log.warning("setting aside message %s dated %s, after now: it is read once that time "
                    "has come", show(row.get("msg_id")), show(row.get("timestamp")))


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


def parse_json(body: bytes) -> Any:
    """JSON of a page; an integer too long for Python (> 4300 digits) does not spoil the page.

    Such an integer is no value of ours: it becomes an ``Oversized`` stand-in, which no checked
    reader accepts, so only the row holding it is skipped (and counted) by the fold.
    """
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        raise
    except ValueError:  # int(): "Exceeds the limit (4300 digits) for integer string conversion"
        return json.loads(body, parse_int=_bounded_int)


def _bounded_int(digits: str) -> int | Oversized:
    return int(digits) if len(digits) <= 100 else Oversized(len(digits))


def _order(row: Any) -> tuple[float, str]:
    if not isinstance(row, dict):
        return float("-inf"), ""
    ts = row.get("timestamp")
    # rows with no usable time (10**400 does not even convert to float) go first; the fold
    # skips and counts them
    ts = float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) and \
        abs(ts) < 1e300 else float("-inf")
    msg_id = row.get("msg_id")
    return ts, msg_id if isinstance(msg_id, str) else ""
