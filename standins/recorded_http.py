"""A small recorded JSON API on loopback: the base of the stand-ins for cloud APIs with no emulator.

A stand-in subclasses ``RecordedApi``, declares its routes (method + regular expression over the
path) and answers with ``Reply`` values; every request is recorded (method, path, query, headers,
JSON body, the status answered), so tests assert on what a client really sent. A route handler
refuses a request the real API would refuse by raising ``ApiRefusal`` with the status and the
error body that API uses. The server runs in a thread of the calling process (``start``) or as
a process of its own (``serve_forever`` from a module's ``__main__``), optionally over TLS with a
certificate from ``standins.koji_pki``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 16 << 20  # a JSON request body larger than this is refused


@dataclasses.dataclass
class Reply:
    """An answer: status, JSON body (None = empty) and extra headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


class ApiRefusal(Exception):  # noqa: N818 - it is an answer, not an error of the stand-in
    """The request is refused the way the real API refuses it."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


@dataclasses.dataclass
class Request:
    """One recorded request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int = 0
    at: float = dataclasses.field(default_factory=time.monotonic)  # when it arrived

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


Route = tuple[str, re.Pattern[str], Callable[..., Reply]]


class RecordedApi:
    """Routes, a lock over the stand-in's state, and the record of every request."""

    name = "recorded API"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self._routes: list[Route] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ---- routing -----------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Callable[..., Reply]) -> None:
        """Answer `method` on paths matching `pattern` (named groups become keyword args)."""
        self._routes.append((method, re.compile(pattern), handler))

    def handle(self, request: Request) -> Reply:
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                with self.lock:
                    return handler(request, **match.groupdict())
        raise ApiRefusal(404, {"error": {"code": 404, "message": f"no route {request.path}"}})

    def calls(self, method: str, pattern: str) -> list[Request]:
        """Recorded requests with this method whose path matches `pattern` (a regex)."""
        rx = re.compile(pattern)
        with self.lock:
            return [r for r in self.requests if r.method == method and rx.fullmatch(r.path)]

    def forget_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    # ---- serving -----------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0,
              tls: tuple[str, str] | None = None) -> str:
        """Serve in a daemon thread; returns the base URL. `tls` = (certfile, keyfile)."""
        self._server = _server(self, host, port, tls)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name,
                                        daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def serve_forever(self, host: str, port: int, tls: tuple[str, str] | None = None) -> None:
        """Serve in this thread until the process is stopped (a stand-in run as a process)."""
        server = _server(self, host, port, tls)
        self.url = f"{'https' if tls else 'http'}://{host}:{server.server_address[1]}"
        print(f"{self.name} listening on {self.url}", flush=True)
        server.serve_forever()


def error_body(status: int, message: str, reason: str = "") -> dict[str, Any]:
    """Google-style error JSON (Azure stand-ins build their own)."""
    return {"error": {"code": status, "message": message,
                      "errors": [{"message": message, "reason": reason or "invalid"}]}}


def _server(api: RecordedApi, host: str, port: int,
            tls: tuple[str, str] | None) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), _handler_class(api))
    server.daemon_threads = True
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def _handler_class(api: RecordedApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the record is the log

        def _serve(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if 0 < length <= MAX_BODY else b""
            request = Request(self.command, urllib.parse.unquote(parts.path),
                              urllib.parse.parse_qs(parts.query, keep_blank_values=True),
                              {k.lower(): v for k, v in self.headers.items()}, None)
            try:
                if length > MAX_BODY:
                    raise ApiRefusal(413, error_body(413, "request body too large"))
                if raw:
                    try:
                        request.body = json.loads(raw)
                    except ValueError:
                        raise ApiRefusal(400, error_body(400, "body is not JSON", "parseError"))\
                            from None
                reply = api.handle(request)
            except ApiRefusal as refusal:
                reply = Reply(refusal.status, refusal.body)
            request.status = reply.status
            with api.lock:
                api.requests.append(request)
            data = b"" if reply.body is None else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            if data:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler
