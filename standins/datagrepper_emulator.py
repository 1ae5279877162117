"""An emulator of datagrepper 1.1.0's /raw paging over an in-memory history.

Only for what the real datagrepper cannot do on demand (500s, timeouts, cut-off bodies, pages
that lie, bytes no JSON encoder writes) and for the benchmarks. ``EmulatorServer`` serves it over
real HTTP on loopback; its ``tamper`` hook turns an answer into a trap, and ``RawJSON`` values
are written as exactly the JSON text given (a 5000-digit integer, ``1e400``).

The behaviour copied here is the one measured on a real datagrepper 1.1.0 over datanommer:
category = 4th topic word, start/end inclusive, `end` alone ignored, default order desc,
rows_per_page <= 100, pages = ceil(total / rows_per_page), and `total` reported as the page's
row count when pages == 1.
"""

from __future__ import annotations

import bisect
import http.server
import json
import math
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse, urlsplit


class Placed:
    """A row served where a row of timestamp ``at`` and category ``category`` would be, whatever
    it holds itself (a poison row whose timestamp is 1e400, a row that is no object)."""

    def __init__(self, at: float, category: str, row: Any) -> None:
        self.at, self.category, self.row = at, category, row


def _at(row: Any) -> float:
    return row.at if isinstance(row, Placed) else row["timestamp"]


def _category(row: Any) -> str:
    return row.category if isinstance(row, Placed) else row["topic"].split(".")[3]


def _served(row: Any) -> Any:
    return row.row if isinstance(row, Placed) else row


class RawHistory:
    def __init__(self, rows: list[Any]) -> None:
        self.rows = sorted(rows, key=_at)
        self.stamps = [_at(r) for r in self.rows]
        self.requests: list[dict[str, list[str]]] = []

    def add(self, rows: list[Any]) -> None:
        self.__init__(self.rows + rows)  # keep the request log out of it
        self.requests = []

    def answer(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        self.requests.append(query)
        one = {k: v[-1] for k, v in query.items()}
        rpp = int(one.get("rows_per_page", 25))
        page = int(one.get("page", 1))
        if rpp > 100 or page < 1:
            return 400, {"error": "bad request"}
        start = float(one["start"]) if "start" in one else 0.0
        end = float(one["end"]) if "end" in one else None
        if not start:  # datagrepper: start 0/absent with DEFAULT_QUERY_DELTA 0 -> no window
            lo, hi = 0, len(self.rows)
        else:
            lo = bisect.bisect_left(self.stamps, start)
            hi = bisect.bisect_right(self.stamps, end) if end is not None else len(self.rows)
        cats = set(query.get("category", []))
        match = [r for r in self.rows[lo:hi] if not cats or _category(r) in cats]
        if one.get("order", "desc") == "desc":
            match = match[::-1]
        total = len(match)
        pages = math.ceil(total / rpp) if rpp else 1
        chunk = [_served(r) for r in match[(page - 1) * rpp: page * rpp]]
        if pages == 1:
            total = len(chunk)  # the quirk
        return 200, {"raw_messages": chunk, "total": total, "pages": pages, "count": len(chunk),
                     "arguments": {"page": page, "rows_per_page": rpp}}

    def responses_callback(self, fault: Callable[[int], Any] | None = None):
        """A `responses` callback; ``fault(n)`` may return a (status, headers, body) for call n."""
        calls = {"n": 0}

        def callback(request):
            calls["n"] += 1
            if fault is not None:
                injected = fault(calls["n"])
                if injected is not None:
                    if isinstance(injected, BaseException):
                        raise injected
                    return injected
            status, body = self.answer(parse_qs(urlparse(request.url).query))
            return status, {"Content-Type": "application/json"}, json.dumps(body)

        return callback


def row(msg_id: str, ts: float, topic: str, body: dict[str, Any]) -> dict[str, Any]:
    """A /raw row as datagrepper renders it (whole-second timestamps)."""
    return {"i": 0, "msg_id": msg_id, "topic": topic, "timestamp": float(ts),
            "certificate": None, "signature": None, "agent_name": None, "username": None,
            "crypto": None, "msg": body, "headers": {}, "source_name": "datanommer",
            "source_version": "1.5.0", "users": [], "packages": []}


class RawJSON:
    """A value that EmulatorServer writes as exactly ``text`` (which must be valid JSON)."""

    def __init__(self, text: str) -> None:
        self.text = text


def dumps(doc: Any) -> bytes:
    """JSON of ``doc`` with every RawJSON written verbatim (Python's encoder cannot write a
    5000-digit integer or 1e400)."""
    raw: list[str] = []

    def placeholder(value: Any) -> str:
        if isinstance(value, RawJSON):
            raw.append(value.text)
            return f"\x00raw{len(raw) - 1}\x00"
        raise TypeError(f"{type(value).__name__} is not JSON")

    text = json.dumps(doc, default=placeholder)
    for i, value in enumerate(raw):
        text = text.replace(f'"\\u0000raw{i}\\u0000"', value, 1)
    return text.encode()


# (query, status, document) -> (status, headers, body bytes); called for every request
Tamper = Callable[[dict[str, list[str]], int, dict[str, Any]], tuple[int, dict[str, str], bytes]]


class EmulatorServer:
    """A RawHistory answering /raw over HTTP on 127.0.0.1, until ``close()`` (or ``with``).

    ``tamper`` may replace any answer (see Tamper); ``queries`` lists every query string served.
    """

    def __init__(self, history: RawHistory, tamper: Tamper | None = None,
                 keep_alive: bool = False) -> None:
        """``keep_alive`` answers in HTTP/1.1 and keeps connections open, as datagrepper's web
        server does (the benchmarks); by default each answer closes its connection, so a
        tampered body cannot leave a client waiting on a half-read connection."""
        self.history = history
        self.tamper = tamper
        self.queries: list[dict[str, list[str]]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                with outer._lock:
                    outer.queries.append(query)
                    if parts.path.rstrip("/") != "/raw":
                        status, doc = 404, {"error": "not found"}
                    else:
                        status, doc = outer.history.answer(query)
                    if outer.tamper is not None:
                        status, headers, body = outer.tamper(query, status, doc)
                    else:
                        headers, body = {"Content-Type": "application/json"}, dumps(doc)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
