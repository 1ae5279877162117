"""The datagrepper client against faults the real stack cannot produce on demand (responses).

Paging, window splits and same-second rows on a healthy server: test_real_paging.py.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse

import pytest
import responses

from reporter.history import History
from shared.errors import HistoryError
from standins.datagrepper_emulator import RawHistory, row

URL = "http://dg.test"
RAW = f"{URL}/raw"


def _history(n: int, start: float = 1_700_000_000.0, step: float = 60.0, same_second: int = 1):
    topics = ["org.fedoraproject.prod.fedimg.image.copy",
              "org.fedoraproject.prod.fedora_image_uploader.published.v1.aws",
              "org.fedoraproject.prod.buildsys.tag"]  # another category: must not be read
    return [row(f"id-{i:05d}", start + (i // same_second) * step, topics[i % 3], {"n": i})
            for i in range(n)]


def _client(**kw) -> History:
    kw.setdefault("backoff", 0.001)
    kw.setdefault("retries", 3)
    kw.setdefault("concurrency", 2)
    return History(URL, **kw)


def _wanted(rows):
    return sorted((r for r in rows if ".buildsys." not in r["topic"]),
                  key=lambda r: (r["timestamp"], r["msg_id"]))


@responses.activate
class _FaultyDatagrepper:
    """A real HTTP server on loopback answering /raw from a RawHistory, where ``faults[n]`` spoils
    request n: "stall" (no answer within the client's timeout), "reset" (the connection closes
    without an answer), or (status, body) sent instead of the page. The transport retries only
    happen on a real connection, so these faults cannot be injected below requests."""

    STALL = 1.0  # seconds; the client's timeout is a fraction of it

    def __init__(self, hist: RawHistory, faults: dict[int, object]) -> None:
        self.queries: list[str] = []  # every request's query string, in arrival order
        lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                query = urllib.parse.urlsplit(self.path).query
                with lock:
                    outer.queries.append(query)
                    fault = faults.get(len(outer.queries))
                if fault == "stall":
                    time.sleep(outer.STALL)
                    return
                if fault == "reset":
                    self.close_connection = True
                    return
                if fault is None:
                    status, doc = hist.answer(urllib.parse.parse_qs(query))
                    body = json.dumps(doc)
                else:
                    status, body = fault
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_5xx_timeouts_and_broken_json_are_retried():
    rows = _history(250)
    faults = {
        1: (500, json.dumps({"error": "internal_error"})),
        2: "stall",
        3: (200, '{"raw_messages": [{"i": 0, "msg'),
        5: (502, "<html>bad gateway</html>"),
        6: "reset",
    }
    server = _FaultyDatagrepper(RawHistory(rows), faults)
    try:
        client = History(server.url, backoff=0.001, retries=5, concurrency=1,
                         timeout=server.STALL / 4)
        got = client.fetch(1_600_000_000.0, 1_800_000_000.0)
    finally:
        server.close()
    assert got == _wanted(rows)
    assert client.stats.retries == len(faults)
    assert client.stats.requests == len(server.queries)  # the session's own retries counted
    for n in faults:  # each spoiled request was asked again, at once, with the same query
        assert server.queries[n] == server.queries[n - 1], n


@responses.activate
def test_persistent_failure_ends_with_history_error_after_bounded_retries():
    responses.add(responses.GET, RAW, status=503, body="down")
    client = _client(retries=2, concurrency=1, window_days=100000)
    with pytest.raises(HistoryError, match="failed 3 times"):
        client.fetch(1_600_000_000.0, 1_700_000_000.0)
    # 3 attempts for the first window; the other window may have started before the abort
    assert 3 <= client.stats.requests <= 6


@responses.activate
def test_short_page_in_the_middle_is_retried_then_fatal():
    rows = _history(900)  # 300 per category: page 2 of 3 is a middle page
    hist = RawHistory(rows)

    def cb(request):
        status, body = hist.answer({k: [v] for k, v in request.params.items()})
        if request.params["page"] == "2":
            body = {**body, "raw_messages": [], "count": 0}  # an empty page where rows belong
        return status, {}, json.dumps(body)

    responses.add_callback(responses.GET, RAW, callback=cb)
    client = _client(retries=1, concurrency=1, max_pages=10, window_days=100000)
    with pytest.raises(HistoryError, match="page 2/3 has 0 rows, expected 100"):
        client.fetch(1_600_000_000.0, 1_800_000_000.0)


@responses.activate
def test_empty_last_page_is_caught_too():
    rows = _history(600)  # 200 per category: page 2 of 2 is the last page

    hist = RawHistory(rows)

    def cb(request):
        status, body = hist.answer({k: [v] for k, v in request.params.items()})
        if request.params["page"] == "2":
            body = {**body, "raw_messages": [], "count": 0}
        return status, {}, json.dumps(body)

    responses.add_callback(responses.GET, RAW, callback=cb)
    client = _client(retries=1, concurrency=1, max_pages=10, window_days=100000)
    with pytest.raises(HistoryError, match="page 2/2 has 0 rows, expected 100"):
        client.fetch(1_600_000_000.0, 1_800_000_000.0)


@responses.activate
def test_client_errors_are_fatal_at_once():
    responses.add(responses.GET, RAW, status=400, body="<html>bad request</html>")
    client = _client()
    with pytest.raises(HistoryError, match="HTTP 400"):
        client.fetch(1_600_000_000.0, 1_800_000_000.0)
    assert client.stats.retries == 0


def test_dead_port_is_a_history_error_quickly_said_in_one_line_per_retry(caplog):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    # many windows and four threads, yet a dead datagrepper costs one window's retries
    client = History(f"http://127.0.0.1:{port}", retries=2, backoff=0.001, timeout=2,
                     concurrency=4, window_days=30)
    with caplog.at_level("WARNING"), \
            pytest.raises(HistoryError, match="connection refused") as failed:
        client.fetch(1_600_000_000.0, 1_700_000_000.0)
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(lines) == 2, lines
    assert "retry 1 of 2" in lines[0] and "retry 2 of 2" in lines[1]
    for text in (*lines, str(failed.value)):
        assert "connection refused" in text
        assert "2020-09-13 12:26 UTC .. 2020-10-13" in text  # the first window, readable
        assert "1600000000" not in text and "Retrying (" not in text


@responses.activate
def test_rows_arriving_while_paging_cause_a_reread_not_a_gap():
    rows = _history(600)  # 200 fedimg rows: two pages
    hist = RawHistory(rows)
    late = [row("late-1", 1_700_000_000.0 + 30, "org.fedoraproject.prod.fedimg.image.copy",
                {"n": -1})]
    seen = {"n": 0}

    def cb(request):
        seen["n"] += 1
        if seen["n"] == 2:  # a late arrival lands inside the window after its first page
            hist.rows = sorted(hist.rows + late, key=lambda r: r["timestamp"])
            hist.stamps = [r["timestamp"] for r in hist.rows]
            hist.rows += [row(f"late-{i}", 1_700_000_000.0 + 31, late[0]["topic"], {})
                          for i in range(2, 120)]
            hist.rows.sort(key=lambda r: r["timestamp"])
            hist.stamps = [r["timestamp"] for r in hist.rows]
        status, body = hist.answer({k: [v] for k, v in request.params.items()})
        return status, {}, json.dumps(body)

    responses.add_callback(responses.GET, RAW, callback=cb)
    client = _client(concurrency=1, max_pages=10, window_days=100000,
                     categories=("fedimg",))
    got = client.fetch(1_600_000_000.0, 1_800_000_000.0)
    want = {r["msg_id"] for r in hist.rows if ".fedimg." in r["topic"]}
    assert len(want) == 200 + 119
    assert {r["msg_id"] for r in got} == want
    assert seen["n"] > 2  # the window was read again


@responses.activate
def test_seconds_straddling_a_page_boundary_in_another_order_per_page_are_read_alone():
    """datagrepper orders by time alone; PostgreSQL's top-N sort for LIMIT/OFFSET orders the rows
    of one second differently for each page, so a second that straddles a page boundary shows
    one row twice and another never. Modelled here: ties sorted one way for odd pages, the other
    way for even ones. Every row still comes back exactly once, with one extra one-second window
    per straddling second, and no re-read of the whole window."""
    rows = _history(750, same_second=21)  # 250 fedimg rows, 7 a second: two seconds straddle
    hist = RawHistory(rows)
    asked = []

    def cb(request):
        query = {k: [v] for k, v in request.params.items()}
        asked.append(query)
        page, rpp = int(query["page"][0]), int(query["rows_per_page"][0])
        status, first = hist.answer({**query, "page": ["1"]})
        everything = [r for p in range(1, first["pages"] + 1)
                      for r in hist.answer({**query, "page": [str(p)]})[1]["raw_messages"]]
        ties = sorted(everything, key=lambda r: r["msg_id"], reverse=page % 2 == 0)
        ordered = sorted(ties, key=lambda r: r["timestamp"])  # stable: ties keep that order
        doc = {**first, "raw_messages": ordered[(page - 1) * rpp: page * rpp]}
        doc["count"] = len(doc["raw_messages"])
        return status, {}, json.dumps(doc)

    responses.add_callback(responses.GET, RAW, callback=cb)
    client = _client(concurrency=1, max_pages=10, window_days=100000, categories=("fedimg",))
    got = client.fetch(1_600_000_000.0, 1_800_000_000.0)

    want = [r for r in _wanted(rows) if ".fedimg." in r["topic"]]
    assert [r["msg_id"] for r in got] == [r["msg_id"] for r in want]
    # rows 100 and 101, 200 and 201 share their second: those two seconds are read alone
    straddling = [want[99]["timestamp"], want[199]["timestamp"]]
    assert want[100]["timestamp"] == straddling[0] and want[200]["timestamp"] == straddling[1]
    alone = [float(q["start"][0]) for q in asked if q["start"] == q["end"]]
    assert sorted(alone) == straddling
    assert len(asked) == 3 + 2  # three pages once (no re-read), then each straddling second


@responses.activate
def test_a_repeat_outside_the_straddling_seconds_is_still_a_lie():
    rows = _history(750, same_second=21)
    hist = RawHistory(rows)

    def cb(request):
        query = {k: [v] for k, v in request.params.items()}
        status, doc = hist.answer(query)
        if query["page"][0] == "2":  # page 1's first row again, in place of page 2's last
            _, first = hist.answer({**query, "page": ["1"]})
            doc["raw_messages"] = [first["raw_messages"][0]] + doc["raw_messages"][:-1]
        return status, {}, json.dumps(doc)

    responses.add_callback(responses.GET, RAW, callback=cb)
    client = _client(concurrency=1, max_pages=10, window_days=100000, categories=("fedimg",),
                     retries=1)
    with pytest.raises(HistoryError, match="repeats a row of page 1"):
        client.fetch(1_600_000_000.0, 1_800_000_000.0)
