"""Record what botocore actually puts on the wire (the 'before-send' event), per request.

moto ignores most register_image/copy_image parameters and never checks EBS checksums, so the
tests assert on the requests we SENT: the parsed EC2 query form, the EBS REST headers and the
bytes of every block body. Registered on a boto3.Session, it sees every client made from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading
import urllib.parse
from typing import Any

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/")
_EBS_ROUTES = (
    ("POST", re.compile(r"^/snapshots$"), "StartSnapshot"),
    ("PUT", re.compile(r"^/snapshots/(?P<id>[^/]+)/blocks/(?P<index>\d+)$"), "PutSnapshotBlock"),
    ("POST", re.compile(r"^/snapshots/completion/(?P<id>[^/]+)$"), "CompleteSnapshot"),
)


@dataclasses.dataclass
class Sent:
    region: str
    service: str
    action: str
    params: dict[str, str]  # EC2: the query form; EBS: path parts + x-amz-* headers
    body_len: int
    body_sha256: bytes | None = None  # raw digest of the body (EBS blocks)
    body: bytes = b""


def _header(headers: Any, name: str) -> str:
    value = headers.get(name)
    return value.decode() if isinstance(value, bytes) else str(value or "")


class WireLog:
    def __init__(self, session: Any, keep_body: bool = False):
        self.sent: list[Sent] = []
        self.keep_body = keep_body
        self._lock = threading.Lock()
        session.events.register("before-send", self._record)

    def _record(self, request: Any, **_: Any) -> None:
        auth = _header(request.headers, "Authorization")
        scope = _SCOPE.search(auth)
        region, service = (scope["region"], scope["service"]) if scope else ("?", "?")
        body = request.body or b""
        if hasattr(body, "read"):  # streamed: read and rewind so botocore still sends it
            pos = body.tell()
            data = body.read()
            body.seek(pos)
            body = data
        if isinstance(body, str):
            body = body.encode()
        url = urllib.parse.urlsplit(request.url)
        if service == "ebs":
            action, params = "?", {}
            for method, route, name in _EBS_ROUTES:
                m = route.match(url.path)
                if m and request.method == method:
                    action, params = name, dict(m.groupdict())
            for key, value in request.headers.items():
                if key.lower().startswith("x-amz-") and key.lower() not in (
                        "x-amz-date", "x-amz-content-sha256"):
                    params[key.lower()] = value.decode() if isinstance(value, bytes) else value
            if action == "StartSnapshot":
                import json
                params.update({k: json.dumps(v) if not isinstance(v, str) else v
                               for k, v in json.loads(body or b"{}").items()})
            digest = hashlib.sha256(body).digest() if action == "PutSnapshotBlock" else None
        else:
            params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
            action = params.get("Action", "?")
            digest = None
        with self._lock:
            self.sent.append(Sent(region, service, action, params, len(body), digest,
                                  body if self.keep_body else b""))

    def calls(self, action: str, region: str | None = None) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent
                    if s.action == action and (region is None or s.region == region)]

    def actions(self) -> list[str]:
        with self._lock:
            return [s.action for s in self.sent]
