"""An HTTP proxy in front of the moto server that adds the faults of real AWS regions moto lacks.

Point ``AWS_ENDPOINT_URL`` at ``FaultProxy.url``: every request is forwarded to the upstream
(the moto server) and its answer passed back, unless a rule says otherwise. The region and the
service of a request come from its SigV4 credential scope (the Authorization header, as on AWS
itself), the action from the EC2 query form, so one proxy can play several regions at once:

- ``blackhole(region)``: connections are accepted and requests read, but never answered: the
  region stopped answering, and the client runs into its read timeout. ``release(region)``
  ends that (the connections held so far are closed unanswered); ``stop()`` ends everything.
- ``throttle(rate, service="ec2", seed=...)``: that fraction of the service's requests (drawn
  from a seeded random stream, so a run can be repeated) gets one of EC2's own throttling
  answers: ``RequestLimitExceeded`` (HTTP 503) or ``ThrottlingException`` (HTTP 400), in the
  EC2 error document botocore parses on AWS.

``seen`` records every request: when, region, service, action and what became of it
("forwarded", "throttled", "blackholed"); ``count()`` and ``first_seen()`` read it.
"""

from __future__ import annotations

import dataclasses
import http.client
import http.server
import random
import re
import threading
import time
import urllib.parse
import uuid
from typing import Any

from standins import StandinError

UPSTREAM_TIMEOUT = 60.0  # seconds for the upstream (moto) to answer one request
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailers", "transfer-encoding", "upgrade", "content-length"})
THROTTLING = (("RequestLimitExceeded", 503, "Request limit exceeded."),
              ("ThrottlingException", 400, "Rate exceeded"))


@dataclasses.dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it."""

    at: float  # time.monotonic() when its headers and body were read
    wall: float  # time.time() then, to compare with other processes' clocks (sent-at headers)
    region: str
    service: str
    action: str
    fate: str  # "forwarded", "throttled" or "blackholed"


class FaultProxy:
    """A threaded HTTP/1.1 proxy on 127.0.0.1 in front of ``upstream`` (see the module doc)."""

    def __init__(self, upstream: str) -> None:
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise StandinError(f"fault proxy: upstream must be http://host:port, got {upstream}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.seen: list[Seen] = []
        self._blackholes: set[str] = set()
        self._throttle: tuple[float, str, random.Random] | None = None
        self._cond = threading.Condition()
        self._closing = False
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every held connection and stop serving."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    # --- rules --------------------------------------------------------------------------------
    def blackhole(self, region: str) -> None:
        with self._cond:
            self._blackholes.add(region)

    def release(self, region: str) -> None:
        with self._cond:
            self._blackholes.discard(region)
            self._cond.notify_all()

    def throttle(self, rate: float, service: str = "ec2", seed: int = 0) -> None:
        """Answer `rate` (0..1) of `service`'s requests with a throttling error; 0 turns it off."""
        with self._cond:
            self._throttle = (rate, service, random.Random(seed)) if rate > 0 else None

    # --- what happened ------------------------------------------------------------------------
    def count(self, fate: str | None = None, *, region: str | None = None,
              service: str | None = None, action: str | None = None) -> int:
        return sum(1 for s in list(self.seen)
                   if (fate is None or s.fate == fate) and (region is None or s.region == region)
                   and (service is None or s.service == service)
                   and (action is None or s.action == action))

    def first_seen(self, region: str) -> Seen | None:
        """The first request for `region`, None if there was none."""
        return next((s for s in list(self.seen) if s.region == region), None)

    # --- used by the handler ------------------------------------------------------------------
    def _decide(self, region: str, service: str) -> tuple[str, tuple[str, int, str] | None]:
        with self._cond:
            if region in self._blackholes:
                return "blackholed", None
            if self._throttle is not None:
                rate, only, rng = self._throttle
                if service == only and rng.random() < rate:
                    return "throttled", rng.choice(THROTTLING)
        return "forwarded", None

    def _hold(self, region: str) -> None:
        """Block while `region` is a black hole and the proxy runs."""
        with self._cond:
            self._cond.wait_for(lambda: self._closing or region not in self._blackholes)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like AWS: botocore reuses its connections
    proxy: FaultProxy  # set on the per-proxy subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _relay(self) -> None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._answer(501, b"fault proxy: chunked request bodies are not supported\n",
                         "text/plain")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        scope = _SCOPE.search(self.headers.get("Authorization") or "")
        region, service = (scope["region"], scope["service"]) if scope else ("", "")
        action = _action(self.command, self.path, self.headers.get("Content-Type") or "", body)
        fate, error = self.proxy._decide(region, service)
        self.proxy.seen.append(Seen(time.monotonic(), time.time(), region, service, action,
                                    fate))
        if fate == "blackholed":
            self.proxy._hold(region)
            self.close_connection = True  # released or stopping: hang up without an answer
            return
        if error is not None:
            code, status, text = error
            xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                   f"<Code>{code}</Code><Message>{text}</Message></Error></Errors>"
                   f"<RequestID>{uuid.uuid4()}</RequestID></Response>").encode()
            self._answer(status, xml, "text/xml;charset=UTF-8")
            return
        self._forward(body)

    def _forward(self, body: bytes) -> None:
        conn = http.client.HTTPConnection(*self.proxy.upstream, timeout=UPSTREAM_TIMEOUT)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in _HOP_BY_HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            conn.close()

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _relay


def _action(method: str, path: str, content_type: str, body: bytes) -> str:
    """The EC2 query action (Action=...), else the method and path (REST APIs such as EBS)."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if form.get("Action"):
            return form["Action"][0]
    return f"{method} {urllib.parse.urlsplit(path).path}"
