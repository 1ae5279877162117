"""Walk datagrepper's time windows and hand back each window's rows once it is complete and
consistent, so a lying or changing source ends the run instead of making a wrong report.

A window is asked for its first page; one with more than ``max_pages`` pages is split in two
(OFFSET paging makes deep pages expensive), otherwise its other pages follow. What a window's
first page announces bounds what is asked for:

- a root window (one of History.windows) gets a request budget from its first page's page
  count (see ``budget``): its pages twice over, plus two requests per split for as many windows
  as can be too deep at once (pages / max_pages + 1) on each of the levels it can be halved
  down to two seconds, so any real history, bursts in one second included, fits. A half that
  claims more pages than its whole (+1 for rows arriving meanwhile) and a tree that spends its
  budget are errors, so a source whose page counts keep growing costs a bounded number of
  requests; no first page may announce more than ``HARD_MAX_PAGES``;
- a window's pages are only accepted together: every page announces the same page count, no
  row appears twice (a page served in place of another repeats rows), times ascend (order=asc)
  and stay inside the window (1 s of rounding allowed). A window that fails is read again from
  its first page, at most ``retries`` times, then the run fails (HistoryError);
- one repeat is no lie: datagrepper orders by time alone and fedora-messaging stamps messages
  to the second, so the rows of one second that straddle a page boundary come in an order
  PostgreSQL may change from one page's query to the next (a LIMIT/OFFSET top-N sort is not
  stable), and a row of that second shows on both pages while another shows on neither. When
  every repeated row is of a time the last row of one page and the first of the next share,
  the window's other rows are handed back and each such second is read as a window of its own
  (``[t, t]``: every row of that second, on one page); the caller drops rows it has already.
- a row dated after ``horizon`` (the run's "now" plus a small skew) is set aside with a
  warning: it is not handed back, so it can never move the incremental checkpoint past now.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from reporter.fold import row_key
from shared.errors import HistoryError, Unreadable

log = logging.getLogger(__name__)

HARD_MAX_PAGES = 10_000  # 1,000,000 rows in one window of one category: no real history has it
ROUNDING = 1.0  # seconds a row's time may lie outside its window (datagrepper rounds)


@dataclass(frozen=True)
class Window:
    category: str
    start: float
    end: float

    def __str__(self) -> str:
        return f"{self.category} {self.start:.0f}..{self.end:.0f}"


@dataclass
class _Tree:
    """The request budget of a root window and every window split from it."""

    root: Window
    budget: int
    used: int = 0


@dataclass
class _State:
    tree: _Tree | None  # None for a root window until its first page has arrived
    parent_pages: int | None = None
    attempt: int = 0
    expected: int = 0
    pages: dict[int, list[Any]] = field(default_factory=dict)


class _Inconsistent(Exception):
    """A window's pages do not fit together; the window is read again."""


class _Tied(Exception):
    """Only rows of seconds that straddle page boundaries repeat (see the module docstring):
    ``rows`` are the window's rows without the repeats, ``times`` the seconds to read alone."""

    def __init__(self, rows: list[Any], times: list[float]) -> None:
        super().__init__(f"rows of {len(times)} second(s) straddle page boundaries")
        self.rows = rows
        self.times = times


GetPage = Callable[[Window, int, bool], dict[str, Any]]


def walk(
    get_page: GetPage,
    roots: list[Window],
    *,
    max_pages: int,
    retries: int,
    horizon: float,
    concurrency: int,
    on_split: Callable[[], None],
    on_future: Callable[[Any], None],
    abort: Callable[[], None],
) -> Iterator[list[Any]]:
    """Yield the rows of each complete, consistent window (in completion order)."""
    states: dict[Window, _State] = {w: _State(None) for w in roots}
    restarts: dict[Window, int] = {}
    with ThreadPoolExecutor(concurrency, thread_name_prefix="datagrepper") as pool:
        pending: dict[Future, tuple[Window, int, int]] = {}

        def ask(w: Window, page: int, fresh: bool) -> None:
            st = states[w]
            if st.tree is not None:
                st.tree.used += 1
                if st.tree.used > st.tree.budget:
                    raise HistoryError(
                        f"datagrepper needed more than {st.tree.budget} requests for {st.tree.root}"
                        f" (its first page announced far fewer): page counts keep changing")
            pending[pool.submit(get_page, w, page, fresh)] = (w, page, st.attempt)

        def restart(w: Window, why: str) -> None:
            restarts[w] = restarts.get(w, 0) + 1
            if restarts[w] > retries:
                raise HistoryError(f"datagrepper window {w} could not be read consistently "
                                   f"({restarts[w]} attempts): {why}")
            log.warning("datagrepper window %s: %s; reading it again", w, why)
            st = states[w]
            st.attempt += 1
            st.expected, st.pages = 0, {}
            ask(w, 1, True)

        # the first window alone first: a datagrepper that is down costs one window's retries
        later = list(roots)
        ask(later.pop(0), 1, False)
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    w, page, attempt = pending.pop(fut)
                    data = fut.result()  # HistoryError propagates: the run fails
                    # A new window starts only while few requests are under way: the rows
                    # of windows read ahead of the fold wait in memory (a whole history, when
                    # datagrepper answers faster than the fold runs).
                    while later and len(pending) < concurrency:
                        ask(later.pop(0), 1, False)
                    st = states[w]
                    if attempt != st.attempt:
                        continue  # an answer for an attempt that was given up
                    pages = data["pages"]
                    if not 0 <= pages <= HARD_MAX_PAGES:
                        raise HistoryError(f"datagrepper says window {w} has {pages} pages; "
                                           f"at most {HARD_MAX_PAGES} are believed")
                    if page == 1:
                        if st.tree is None:
                            st.tree = _Tree(w, budget(pages, w.end - w.start, max_pages))
                            st.tree.used = 1
                        if st.parent_pages is not None and pages > st.parent_pages + 1:
                            raise HistoryError(
                                f"datagrepper says window {w} has {pages} pages, more than the "
                                f"{st.parent_pages} of the window it is half of")
                        if pages > max_pages and w.end - w.start >= 2.0:
                            on_split()
                            mid = math.floor((w.start + w.end) / 2)
                            for half in (Window(w.category, w.start, mid),
                                         Window(w.category, mid, w.end)):
                                states[half] = _State(st.tree, parent_pages=pages)
                                ask(half, 1, False)
                            continue
                        st.expected = pages
                        for p in range(2, pages + 1):
                            ask(w, p, True)
                    elif pages != st.expected:
                        # rows arrived in (or left) the window while paging: OFFSET pages shift
                        restart(w, f"page {page} says {pages} pages, page 1 said {st.expected}")
                        continue
                    st.pages[page] = data["raw_messages"]
                    if len(st.pages) < max(1, st.expected):
                        continue
                    try:
                        rows = _consistent(w, st.pages, horizon, on_future)
                    except _Inconsistent as e:
                        restart(w, str(e))
                        continue
                    except _Tied as tied:
                        rows = tied.rows
                        for t in tied.times:
                            alone = Window(w.category, t, t)
                            if alone not in states:
                                states[alone] = _State(st.tree)
                                ask(alone, 1, True)
                    del states[w]
                    yield rows
        except BaseException:
            abort()
            for fut in pending:
                fut.cancel()
            raise


def budget(pages: int, span: float, max_pages: int) -> int:
    """Requests a window of ``span`` seconds whose first page announced ``pages`` may take."""
    depth = max(1, math.ceil(math.log2(max(2.0, span) / 2)))  # halvings down to two seconds
    return 2 * pages + 3 * depth * (math.ceil(pages / max_pages) + 1) + 10


def _time(row: Any) -> float | None:
    """The row's time when it is one (as the fold's row_key reads it), else None: such rows
    cannot be placed, so they are handed on for the fold to count, not judged here."""
    try:
        return row_key(row)[0]
    except Unreadable:
        return None


def row_identity(row: Any) -> str:
    """The msg_id of a row, or its content for rows without one (to recognise repeats)."""
    msg_id = row.get("msg_id") if isinstance(row, dict) else None
    return msg_id if isinstance(msg_id, str) else json.dumps(row, sort_keys=True, default=repr)


def _straddling(pages: dict[int, list[Any]]) -> set[float]:
    """Times shared by the last row of a page and the first row of the next."""
    out = set()
    for page in sorted(pages):
        after = pages.get(page + 1)
        if pages[page] and after:
            t = _time(pages[page][-1])
            if t is not None and t == _time(after[0]):
                out.add(t)
    return out


def _consistent(w: Window, pages: dict[int, list[Any]], horizon: float,
                on_future: Callable[[Any], None]) -> list[Any]:
    seen: dict[str, int] = {}
    out = []
    last = -math.inf
    # a window of one second is read on its own already: a repeat there is a lie
    straddling = _straddling(pages) if w.start < w.end else set()
    tied: set[float] = set()
    for page in sorted(pages):
        for row in pages[page]:
            key = row_identity(row)
            if key in seen:
                if _time(row) in straddling:
                    tied.add(_time(row))  # type: ignore[arg-type] # in straddling: a float
                    continue
                raise _Inconsistent(f"page {page} repeats a row of page {seen[key]}")
            seen[key] = page
            ts = _time(row)
            if ts is not None:
                if ts > horizon:
                    on_future(row)
                    continue
                if not w.start - ROUNDING <= ts <= w.end + ROUNDING:
                    raise _Inconsistent(f"page {page} holds a row dated {ts:.0f}, outside it")
                if ts < last:
                    raise _Inconsistent(f"page {page} is not in ascending time order")
                last = ts
            out.append(row)
    if tied:
        raise _Tied(out, sorted(tied))
    return out
