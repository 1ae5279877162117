"""The datagrepper client's paging and window splits against the real stack.

Rows go in the production way (fedora-messaging -> RabbitMQ -> datanommer -> PostgreSQL) and come
back through datagrepper's own /raw, so OFFSET paging, the inclusive window ends, the category
filter and the whole-second timestamps are datagrepper's, not a copy of them. Each test records
every response through a requests hook on the client's session, so it can say exactly which
requests were made.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from reporter.history import ROWS_PER_PAGE, History

pytestmark = pytest.mark.slow

START = dt.datetime(2025, 3, 1, 0, 0, 0, tzinfo=dt.UTC)
FEDIMG = "org.fedoraproject.prod.fedimg.image.copy"
FIU = "org.fedoraproject.prod.fedora_image_uploader.published.v1.aws"
OTHER = "org.fedoraproject.prod.buildsys.tag"  # another category: must never be read


def _client(url: str, **kw: Any) -> tuple[History, list[requests.Response]]:
    """A History whose session records every response it receives (thread-safe append)."""
    seen: list[requests.Response] = []
    kw.setdefault("backoff", 0.01)
    kw.setdefault("retries", 2)
    kw.setdefault("concurrency", 2)
    kw.setdefault("timeout", 20)
    history = History(url, **kw)
    history.session.hooks["response"].append(lambda resp, *args, **kwargs: seen.append(resp))
    return history, seen


def _params(resp: requests.Response) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(resp.request.url).query))


def _publish(dg, specs: list[tuple[str, dict, dt.datetime]]) -> list[tuple[float, str, str]]:
    """Publish and wait; returns (timestamp, msg_id, topic) of each message."""
    ids = dg.publish_and_wait(specs, timeout=120)
    return [(sent_at.timestamp(), msg_id, topic)
            for (topic, _, sent_at), msg_id in zip(specs, ids, strict=True)]


def _wanted(stored: list[tuple[float, str, str]], *categories: str) -> list[tuple[float, str]]:
    return sorted((ts, msg_id) for ts, msg_id, topic in stored
                  if topic.split(".")[3] in categories)


def test_deep_windows_are_paged_or_split_and_every_row_comes_back_once(datagrepper_empty):
    dg = datagrepper_empty
    # 110 rows in each of the three categories, a minute apart: more than one page per category
    topics = [FEDIMG, FIU, OTHER]
    specs = [(topics[i % 3], {"n": i}, START + dt.timedelta(minutes=i)) for i in range(330)]
    stored = _publish(dg, specs)
    want = _wanted(stored, "fedimg", "fedora_image_uploader")
    assert len(want) == 220
    start, end = START.timestamp() - 3600, START.timestamp() + 330 * 60 + 3600

    # two pages allowed per window: each category's one window is read as pages 1 and 2
    paged, seen = _client(dg.url, max_pages=2, window_days=1)
    got = paged.fetch(start, end)
    assert [(r["timestamp"], r["msg_id"]) for r in got] == want
    asked = sorted((p["category"], p["page"]) for p in map(_params, seen))
    assert asked == [("fedimg", "1"), ("fedimg", "2"),
                     ("fedora_image_uploader", "1"), ("fedora_image_uploader", "2")]
    assert paged.stats.splits == 0 and paged.stats.requests == 4
    for resp in seen:
        q = _params(resp)
        assert resp.status_code == 200
        assert q["order"] == "asc" and q["rows_per_page"] == str(ROWS_PER_PAGE)
        assert float(q["start"]) == start and float(q["end"]) == end  # end alone is ignored
        assert resp.request.headers["Accept"] == "application/json"
    pages = {(_params(r)["category"], _params(r)["page"]): len(r.json()["raw_messages"])
             for r in seen}
    assert pages[("fedimg", "1")] == ROWS_PER_PAGE and pages[("fedimg", "2")] == 10

    # one page allowed: each category's window is too deep and is split in two halves that
    # share their middle second; each half fits one page
    split, seen = _client(dg.url, max_pages=1, window_days=1)
    got = split.fetch(start, end)
    assert [(r["timestamp"], r["msg_id"]) for r in got] == want
    assert split.stats.splits == 2 and split.stats.requests == 6
    assert all(_params(r)["page"] == "1" for r in seen)
    mid = float((int(start) + int(end)) // 2)
    windows = Counter((_params(r)["category"], float(_params(r)["start"]),
                       float(_params(r)["end"])) for r in seen)
    assert windows == Counter({(c, s, e): 1 for c in ("fedimg", "fedora_image_uploader")
                               for s, e in ((start, end), (start, mid), (mid, end))})


def test_same_second_rows_across_split_windows_are_read_once(datagrepper_empty):
    dg = datagrepper_empty
    second = START + dt.timedelta(hours=1)
    # 120 rows in one second and 120 in the next: no window narrow enough to hold one second
    # holds them in one page, and the split windows meet inside these seconds
    specs = [(FEDIMG, {"n": i}, second + dt.timedelta(seconds=i // 120)) for i in range(240)]
    specs += [(FEDIMG, {"n": 1000 + i}, second - dt.timedelta(seconds=100 * (i + 1)))
              for i in range(5)]
    stored = _publish(dg, specs)
    client, seen = _client(dg.url, max_pages=1, window_days=1, categories=("fedimg",))
    lo = second.timestamp() - 1000
    got = client.fetch(lo, lo + 2000)

    assert [(r["timestamp"], r["msg_id"]) for r in got] == _wanted(stored, "fedimg")
    assert client.stats.splits > 0
    assert any(_params(r)["page"] == "2" for r in seen)  # a narrow window was paged
    served = Counter(row["msg_id"] for r in seen for row in r.json()["raw_messages"])
    same_second = {msg_id for ts, msg_id, _ in stored if ts == second.timestamp()}
    # datagrepper served rows of the shared second more than once; the result has them once
    assert any(served[msg_id] > 1 for msg_id in same_second)
    assert len(got) == len({r["msg_id"] for r in got}) == 245


def test_empty_history_is_one_request_per_window_and_no_rows(datagrepper_empty):
    client, seen = _client(datagrepper_empty.url, max_pages=1, window_days=10)
    start = START.timestamp()
    assert client.fetch(start, start + 25 * 86400) == []
    # three windows of at most 10 days, for each of the two categories; nothing to page
    assert client.stats.requests == len(seen) == 6
    assert [r.json()["pages"] for r in seen] == [0] * 6
