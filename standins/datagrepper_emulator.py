"""An emulator of datagrepper 1.1.0's /raw paging over an in-memory history.

Only for what the real datagrepper cannot do on demand (500s, timeouts, cut-off bodies) and for
the request-count benchmark. The behaviour copied here is the one measured on a real datagrepper
1.1.0 over datanommer: category = 4th topic word, start/end inclusive, `end` alone ignored,
default order desc, rows_per_page <= 100, pages = ceil(total / rows_per_page), and `total`
reported as the page's row count when pages == 1.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse


class RawHistory:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = sorted(rows, key=lambda r: r["timestamp"])
        self.stamps = [r["timestamp"] for r in self.rows]
        self.requests: list[dict[str, list[str]]] = []

    def add(self, rows: list[dict[str, Any]]) -> None:
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
        match = [r for r in self.rows[lo:hi]
                 if not cats or r["topic"].split(".")[3] in cats]
        if one.get("order", "desc") == "desc":
            match = match[::-1]
        total = len(match)
        pages = math.ceil(total / rpp) if rpp else 1
        chunk = match[(page - 1) * rpp: page * rpp]
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
