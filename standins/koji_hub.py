"""A Koji hub stand-in: a real HTTP(S) server speaking XML-RPC and serving Koji-style files.

Why: every component talks to Koji through a real ``koji.ClientSession`` and fetches files through
``koji.PathInfo`` URLs. Mocking ``ClientSession`` would test our assumptions about Koji, not Koji's
wire format; this stand-in runs the real client library end to end (argument encoding with
``__starstar``, multicall, fault -> exception conversion, session headers, HTTP errors, retries)
against data shaped like real Koji answers (the test suite keeps samples of those).

What it models (see ``KojiHub``):

- XML-RPC at ``/kojihub``: read calls (getTaskInfo, getTaskChildren, getTaskResult, listTaskOutput,
  getBuild, listArchives, listTasks, getUser, getLoggedInUser, hasPerm, getKojiVersion), multiCall,
  and the build calls buildImageOz / buildImage guarded by the ``image`` permission the way the hub
  does it (``koji.ActionNotAllowed``, fault code 1004, "image permission required ...").
- Authentication: password ``login`` and, when started with ``tls=True``, real ``sslLogin`` where
  the user is the client certificate's CN (``hub.client_cert(user)`` writes one). Calls carry
  Koji-Session-Id/Key headers like the real client sends. For code paths we cannot drive for real
  (GSSAPI), ``hub.current_user`` names the user that session-less calls are attributed to; it
  defaults to ``None`` = anonymous, exactly like the real hub.
- Files under ``/kojifiles`` (= ``topurl``): ``work/tasks/<id % 10000>/<id>/<file>`` and
  ``packages/<name>/<version>/<release>/images/<file>``, streamed from local paths, with
  Content-Length and single byte ranges (206, as a resumed download asks); plus redirects,
  corruption, truncation and stalls on demand (``corrupt``).
- Failure switches: ``hub.down = True`` (every request gets HTTP 503), ``hub.stop()`` (connection
  refused; ``hub.start()`` brings it back on the same port), ``hub.inject_fault(method, error)``,
  ``hub.delay`` (seconds to sleep before answering, for timeout tests).
- Every XML-RPC call is recorded in ``hub.calls`` (``HubCall``: method, args, kwargs, user).
- Bus message bodies shaped like the real ``buildsys.task.state.change`` /
  ``buildsys.build.state.change`` bodies: ``hub.task_state_change_body()``,
  ``hub.build_state_change_body()``.

Note on listTasks: like the real hub, ``request`` is the raw XML-RPC string unless
``opts={'decode': True}`` is passed.
"""

from __future__ import annotations

import dataclasses
import datetime
import http.server
import itertools
import os
import pathlib
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import traceback
import urllib.parse
import xmlrpc.client
from collections.abc import Mapping
from typing import Any

import koji
from koji.xmlrpcplus import Fault, dumps

from shared.files import sha256_file
from standins.koji_pki import KojiPKI

TASK_STATES = koji.TASK_STATES
BUILD_STATES = koji.BUILD_STATES
SHA256 = koji.CHECKSUM_TYPES["sha256"]  # == 2

STALL_LIMIT = 120.0  # seconds a "stall" download is held at most
TASK_TOPIC = "buildsys.task.state.change"
BUILD_TOPIC = "buildsys.build.state.change"

# Child task method for each image parent method, as the real hub names them.
CHILD_METHODS = {
    "image": "createImage",
    "livemedia": "createLiveMedia",
    "appliance": "createAppliance",
    "kiwiBuild": "createKiwiImage",
    "imageBuilderBuild": "imageBuilderBuildArch",
}

# archivetypes rows Koji uses for image outputs: (id, name, description, extensions).
_ARCHIVE_TYPES = [
    (42, "raw-xz", "xz compressed raw disk image", "raw.xz"),
    (33, "qcow2", "QCOW2 image", "qcow2"),
    (34, "raw", "Raw disk image", "raw"),
    (35, "vhd", "Hyper-V image", "vhd"),
    (48, "vhdx", "Hyper-V Virtual Hard Disk v2 image", "vhdx"),
    (36, "vmdk", "vSphere image", "vmdk"),
    (15, "tar", "Tar file", "tar tar.gz tar.bz2 tar.xz tgz"),
    (17, "xml", "XML file", "xml"),
    (38, "ks", "Kickstart", "ks"),
    (10, "iso", "CD/DVD Image", "iso"),
    (39, "vagrant-libvirt", "Vagrant box for libvirt", "vagrant-libvirt.box"),
    (60, "log", "Log file", "log"),
]
_IMAGE_BTYPE_ID = 4

_T0 = 1764028800.0  # 2025-11-25T00:00:00Z: a stable "now" for model data


def _timestr(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(sep=" ")


def _archive_type(filename: str) -> tuple[int, str, str, str]:
    best = None
    for row in _ARCHIVE_TYPES:
        for ext in row[3].split():
            if filename.endswith("." + ext) and (best is None or len(ext) > best[0]):
                best = (len(ext), row)
    if best is None:
        return (0, "unknown", "Unknown file type", "")
    return best[1]


@dataclasses.dataclass
class HubCall:
    """One XML-RPC call as the hub saw it (inner multiCall calls have ``multicall=True``)."""

    method: str
    args: tuple
    kwargs: dict
    user: str | None
    multicall: bool = False


@dataclasses.dataclass
class _Served:
    path: pathlib.Path
    mode: str | None = None  # None, "flip" (same length, wrong bytes), "truncate", "stall"


class _Context(threading.local):
    user: dict | None = None
    peer_cn: str | None = None
    ssl_path: bool = False


# --------------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so stop() really makes the hub unreachable.
    protocol_version = "HTTP/1.0"
    server_version = "KojiHubStandIn/1.0"
    hub: KojiHub  # set on the per-hub subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _gate(self) -> bool:
        hub = self.hub
        if hub.delay:
            time.sleep(hub.delay)
        hub.requests.append((self.command, self.path))
        if hub.down:
            body = b"Service Unavailable\n"
            self.send_response(503)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return False
        return True

    def _plain(self, code: int, text: str, headers: Mapping[str, str] | None = None) -> None:
        body = text.encode()
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # --- XML-RPC ---------------------------------------------------------------------------
    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        if not self._gate():
            return
        parsed = urllib.parse.urlsplit(self.path)
        if parsed.path.rstrip("/") not in ("/kojihub", "/kojihub/ssllogin"):
            self._plain(404, "not found\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length)
        hub = self.hub
        try:
            params, method = xmlrpc.client.loads(data, use_builtin_types=True)
            ctx = hub._ctx
            ctx.user = None
            ctx.ssl_path = parsed.path.rstrip("/").endswith("/ssllogin")
            ctx.peer_cn = self._peer_cn()
            ctx.user = hub._session_user(self.headers, urllib.parse.parse_qs(parsed.query))
            result = hub._dispatch(method, params)
            response = dumps((result,), methodresponse=1, allow_none=1)
        except Fault as fault:
            response = dumps(fault, methodresponse=1, allow_none=1)
        except koji.GenericError as exc:
            response = dumps(Fault(exc.faultCode, str(exc)), methodresponse=1, allow_none=1)
        except Exception as exc:  # the real hub reports unexpected errors as fault code 1
            response = dumps(Fault(1, f"{type(exc).__name__}: {exc}"), methodresponse=1,
                             allow_none=1)
        body = response.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Koji-Version", hub.koji_version)
        self.end_headers()
        self.wfile.write(body)

    def _peer_cn(self) -> str | None:
        conn = self.connection
        if not isinstance(conn, ssl.SSLSocket):
            return None
        cert = conn.getpeercert()
        for rdn in (cert or {}).get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return value
        return None

    # --- files -----------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if not self._gate():
            return
        hub = self.hub
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path in hub._redirects:
            status, location = hub._redirects[path]
            self._plain(status, f"moved to {location}\n", {"Location": location})
            return
        prefix = "/kojifiles/"
        served = hub._files.get(path[len(prefix):]) if path.startswith(prefix) else None
        if served is None or not served.path.is_file():
            self._plain(404, "not found\n")
            return
        size = served.path.stat().st_size
        first, last = 0, size - 1
        ranged = _byte_range(self.headers.get("Range"), size) if hub.ranges else None
        if ranged is not None:
            first, last = ranged
            if first > last:
                self._plain(416, "range not satisfiable\n", {"Content-Range": f"bytes */{size}"})
                return
        length = last - first + 1
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if ranged:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        # a range is served as asked, except that "truncate" cuts it halfway too (so resuming
        # never completes a file that is truncated on purpose)
        mode = served.mode if not ranged or served.mode == "truncate" else None
        limit = first + (length // 2 if mode in ("truncate", "stall") else length)
        sent = first
        with open(served.path, "rb") as f:
            f.seek(first)
            while sent < limit:
                chunk = f.read(min(1 << 20, limit - sent))
                if not chunk:
                    break
                if mode == "flip" and sent == 0:
                    chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return
                sent += len(chunk)
                with hub._lock:
                    hub.served_bytes[path] = hub.served_bytes.get(path, 0) + len(chunk)
        if mode == "stall":
            self.wfile.flush()
            hub.stalled.set()
            hub.unstalled.wait(STALL_LIMIT)
        if mode in ("truncate", "stall"):
            self.close_connection = True

    do_HEAD = do_GET


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) of a single-range ``Range: bytes=...`` header, as Apache serves it; None
    for no header or one it ignores (several ranges, other units)."""
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", (header or "").strip())
    if m is None or m.group(1) == m.group(2) == "":
        return None
    if m.group(1) == "":  # suffix: the last n bytes
        return max(0, size - int(m.group(2))), size - 1
    last = int(m.group(2)) if m.group(2) else size - 1
    return int(m.group(1)), min(last, size - 1)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    ssl_context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            # handshake happens lazily in the handler thread, not in the accept loop
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, addr


class KojiHub:
    """In-process Koji hub + kojifiles server on 127.0.0.1 (see the module docstring)."""

    koji_version = "1.36.1"

    def __init__(self, tls: bool = False, workdir: os.PathLike | str | None = None) -> None:
        self.tls = tls
        self._own_workdir = workdir is None
        self.workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="koji-hub-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.down = False
        self.delay = 0.0
        self.stalled = threading.Event()  # set while a "stall" download is held halfway
        self.unstalled = threading.Event()  # set to let held downloads end (unanswered)
        self.current_user: str | None = None
        self.targets: set[str] | None = None  # None: any build target is accepted
        self.calls: list[HubCall] = []
        self.requests: list[tuple[str, str]] = []  # (HTTP method, path) of every request
        self.served_bytes: dict[str, int] = {}  # URL path -> body bytes sent, over all requests
        self.ranges = True  # False: ignore Range headers (whole file, 200), as some servers do
        self.users: dict[str, dict] = {}
        self.tasks: dict[int, dict] = {}
        self.builds: dict[int, dict] = {}
        self.archives: list[dict] = []
        self._passwords: dict[str, str] = {}
        self._perms: dict[str, set[str]] = {}
        self._sessions: dict[int, tuple[str, str]] = {}
        self._results: dict[int, Any] = {}
        self._faults: dict[str, list] = {}
        self._files: dict[str, _Served] = {}
        self._redirects: dict[str, tuple[int, str]] = {}
        self._lock = threading.RLock()
        self._ctx = _Context()
        self._task_ids = itertools.count(140_000_001)
        self._build_ids = itertools.count(2_600_001)
        self._archive_ids = itertools.count(9_000_001)
        self._user_ids = itertools.count(3_001)
        self._session_ids = itertools.count(70_000_001)
        if tls:
            (self.workdir / "pki").mkdir(exist_ok=True)
        self._pki = KojiPKI(self.workdir / "pki") if tls else None
        self.add_user("releng", perms=["image", "livecd", "appliance", "livemedia"])
        self.add_user("kojiadmin", perms=["admin"])
        self.add_user("nobody-special")
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.start()

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start serving (again, on the same port after stop())."""
        if self._server is not None:
            return
        handler = type("BoundHandler", (_Handler,), {"hub": self})
        server = _Server(("127.0.0.1", self.port), handler)
        if self._pki:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self._pki.server_path)
            ctx.load_verify_locations(self._pki.ca_path)
            ctx.verify_mode = ssl.CERT_OPTIONAL
            server.ssl_context = ctx
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"koji-hub-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket: clients get 'connection refused' until start()."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        """Stop and remove the scratch directory (files registered from elsewhere stay)."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def base_url(self) -> str:
        """The hub host's web root, as Koji messages carry it in ``base_url``."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """XML-RPC endpoint for ``koji.ClientSession``."""
        return self.base_url + "/kojihub"

    @property
    def topurl(self) -> str:
        """``koji.PathInfo(topdir=topurl)`` builds URLs this server answers."""
        return self.base_url + "/kojifiles"

    @property
    def ca_cert(self) -> str | None:
        """CA bundle to verify a tls=True hub (``serverca`` / requests ``verify``)."""
        return str(self._pki.ca_path) if self._pki else None

    def client_cert(self, user: str) -> str:
        """PEM (cert + key) whose CN is ``user``, for ``session.ssl_login(cert=...)``."""
        if not self._pki:
            raise RuntimeError("client certificates need KojiHub(tls=True)")
        return str(self._pki.client_cert(user))

    def client(self, **opts: Any) -> koji.ClientSession:
        """A real ClientSession with quick retries/timeouts, trusting this hub's CA."""
        o: dict[str, Any] = {"max_retries": 1, "retry_interval": 0.1, "timeout": 10,
                             "anon_retry": False}
        if self._pki:
            o["serverca"] = self.ca_cert
        o.update(opts)
        return koji.ClientSession(self.url, opts=o)

    # --- users / auth ----------------------------------------------------------------------
    def add_user(self, name: str, perms: list[str] | tuple[str, ...] = (),
                 password: str | None = None, krb_principal: str | None = None) -> dict:
        """Create (or update) a user; ``perms`` like 'image' or 'admin'."""
        with self._lock:
            user = self.users.get(name)
            if user is None:
                user = {"id": next(self._user_ids), "name": name, "status": 0, "usertype": 0,
                        "krb_principals": [krb_principal or f"{name}@FEDORAPROJECT.ORG"]}
                self.users[name] = user
            self._perms[name] = set(perms)
            if password is not None:
                self._passwords[name] = password
            return user

    def grant(self, user: str, perm: str) -> None:
        self._perms.setdefault(user, set()).add(perm)

    def revoke(self, user: str, perm: str) -> None:
        self._perms.get(user, set()).discard(perm)

    def _user_by(self, info: Any) -> dict | None:
        if isinstance(info, int):
            return next((u for u in self.users.values() if u["id"] == info), None)
        if isinstance(info, str):
            return self.users.get(info)
        return None

    def _session_user(self, headers: Any, query: dict) -> dict | None:
        sid = headers.get("Koji-Session-Id") or (query.get("session-id") or [None])[0]
        key = headers.get("Koji-Session-Key") or (query.get("session-key") or [None])[0]
        if sid is None:
            return self.users.get(self.current_user) if self.current_user else None
        entry = self._sessions.get(int(sid))
        if entry is None or entry[1] != key:
            raise koji.AuthError("Invalid session or bad credentials")
        return self.users[entry[0]]

    def _new_session(self, user: str) -> dict:
        sid = next(self._session_ids)
        key = f"{sid}-{os.urandom(8).hex()}"
        self._sessions[sid] = (user, key)
        return {"session-id": sid, "session-key": key, "header-auth": True}

    def _has_perm(self, user: dict | None, perm: str) -> bool:
        if user is None:
            return False
        perms = self._perms.get(user["name"], set())
        return perm in perms or "admin" in perms

    def _assert_perm(self, *perms: str) -> dict:
        user = self._ctx.user
        if any(self._has_perm(user, p) for p in perms):
            return user
        msg = f"{perms[0]} permission required"
        msg += f" (logged in as {user['name']})" if user else " (user not logged in)"
        raise koji.ActionNotAllowed(msg)

    # --- failure injection -----------------------------------------------------------------
    def inject_fault(self, method: str, error: koji.GenericError | Fault,
                     times: int | None = 1) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``error`` (None = forever)."""
        self._faults.setdefault(method, []).append([error, times])

    # --- files -----------------------------------------------------------------------------
    def _relpath(self, path_or_url: str) -> str:
        p = urllib.parse.urlsplit(path_or_url).path if "://" in path_or_url else path_or_url
        p = p.lstrip("/")
        return p[len("kojifiles/"):] if p.startswith("kojifiles/") else p

    def add_file(self, relpath: str, source: os.PathLike | str | bytes) -> str:
        """Serve ``source`` (a local file, served in place, or bytes) at topurl/relpath."""
        relpath = self._relpath(relpath)
        if isinstance(source, bytes):
            local = self.workdir / "files" / relpath
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(source)
        else:
            local = pathlib.Path(source)
        self._files[relpath] = _Served(local)
        return f"{self.topurl}/{relpath}"

    def file_path(self, path_or_url: str) -> pathlib.Path:
        """The local file behind a served URL/relpath (KeyError if not served)."""
        return self._files[self._relpath(path_or_url)].path

    def remove_file(self, path_or_url: str) -> None:
        """Stop serving a file (GET answers 404), e.g. a cleaned-up task directory."""
        self._files.pop(self._relpath(path_or_url), None)

    def corrupt(self, path_or_url: str, mode: str = "flip") -> None:
        """Serve wrong bytes: 'flip' (same length, first byte inverted), 'truncate'
        (full Content-Length announced, connection closed halfway) or 'stall' (half the bytes,
        then ``stalled`` is set and the download held until ``unstalled`` is set or
        STALL_LIMIT passes: a client caught in the middle of a download)."""
        if mode not in ("flip", "truncate", "stall", None):
            raise ValueError(mode)
        self._files[self._relpath(path_or_url)].mode = mode

    def redirect(self, path_or_url: str, location: str, status: int = 302) -> None:
        """Answer GET ``path`` with a redirect to ``location`` (e.g. another host)."""
        p = urllib.parse.urlsplit(path_or_url).path if "://" in path_or_url else path_or_url
        self._redirects["/" + p.lstrip("/")] = (status, location)

    def task_url(self, task_id: int, filename: str) -> str:
        return f"{koji.PathInfo(topdir=self.topurl).task(task_id)}/{filename}"

    def build_url(self, build_id: int, filename: str) -> str:
        return f"{koji.PathInfo(topdir=self.topurl).imagebuild(self.builds[build_id])}/{filename}"

    # --- model -----------------------------------------------------------------------------
    def add_task(self, method: str, request: list, owner: str = "releng",
                 state: int = TASK_STATES["FREE"], parent: int | None = None,
                 arch: str = "noarch", label: str | None = None, result: Any = None,
                 create_ts: float | None = None, channel_id: int = 13,
                 priority: int = koji.PRIO_DEFAULT) -> int:
        """Create a bare task row (tasks made by the model helpers use this too)."""
        with self._lock:
            tid = next(self._task_ids)
            ts = _T0 if create_ts is None else create_ts
            done = state in (TASK_STATES["CLOSED"], TASK_STATES["FAILED"],
                             TASK_STATES["CANCELED"])
            started = state != TASK_STATES["FREE"]
            self.tasks[tid] = {
                "id": tid, "state": state, "create_ts": ts,
                "start_ts": ts + 40 if started else None,
                "completion_ts": ts + 1300 if done else None,
                "channel_id": channel_id, "host_id": 392 if started else None,
                "parent": parent, "label": label, "waiting": None if parent else False,
                "awaited": False if parent else None, "owner": self.users[owner]["id"],
                "method": method, "arch": arch, "priority": priority, "weight": 2.0,
                "request": list(request), "children": [],
            }
            if parent is not None:
                self.tasks[parent]["children"].append(tid)
            if result is not None or state == TASK_STATES["CLOSED"]:
                self._results[tid] = result
            return tid

    def set_task_state(self, task_id: int, state: int) -> None:
        """Move a task (and nothing else) to ``state``, fixing its timestamps."""
        t = self.tasks[task_id]
        t["state"] = state
        if state != TASK_STATES["FREE"] and t["start_ts"] is None:
            t["start_ts"] = t["create_ts"] + 40
        if state in (TASK_STATES["CLOSED"], TASK_STATES["FAILED"], TASK_STATES["CANCELED"]):
            t["completion_ts"] = t["completion_ts"] or t["create_ts"] + 1300

    def set_task_result(self, task_id: int, result: Any) -> None:
        """Make getTaskResult answer ``result`` for a task (anything XML-RPC can carry, and
        strings it cannot, e.g. a NUL byte, which the client then fails to parse)."""
        with self._lock:
            self._results[task_id] = result

    def task_result(self, task_id: int) -> Any:
        """What getTaskResult answers for a task now (a copy may be changed and set back)."""
        return self._results.get(task_id)

    def task_dir(self, task_id: int) -> str:
        """relpath of a task's output directory below topurl."""
        return "work/" + koji.PathInfo(topdir="").taskrelpath(task_id)

    def add_image_task(self, name: str = "Fedora-Cloud-Base", version: str = "Rawhide",
                       release: str = "20261125.n.0", arches: list[str] | tuple = ("x86_64",),
                       files: Mapping[str, Mapping[str, os.PathLike | str | bytes | None]]
                       | None = None, *, method: str = "image", owner: str = "releng",
                       state: int = TASK_STATES["CLOSED"], scratch: bool = True,
                       target: str = "f44-candidate", ksurl: str | None = None,
                       opts: dict | None = None, task_id: int | None = None,
                       extra_outputs: bool = True) -> int:
        """Create a parent image task with one child per arch, like the pungi sample.

        ``files`` maps arch -> {filename: local path | bytes | None (small generated bytes)};
        by default each arch gets ``<name>-<version>-<release>.<arch>.raw.xz``. Children carry
        getTaskResult dicts (arch, name, version, release, files, logs, rpmlist, task_id) and
        serve their files at ``topurl/work/tasks/<id % 10000>/<id>/<file>``. With
        ``extra_outputs`` each child also lists the kickstart/libvirt xml Koji produces, so
        consumers must pick images by name. ``task_id`` fills in an existing task (e.g. one
        created through buildImageOz) instead of creating one. Non-scratch tasks get a
        ``tagBuild`` child as in the real build message samples.
        """
        arches = list(arches)
        if files is None:
            files = {a: {f"{name}-{version}-{release}.{a}.raw.xz": None} for a in arches}
        child_method = CHILD_METHODS.get(method, "createImage")
        ks = "fedora-cloud-base.ks"
        popts = {"disk_size": "5", "distro": "Fedora-20", "format": ["raw-xz", "qcow2"],
                 "kickstart": ks, "release": release,
                 "ksurl": ksurl or "git+https://pagure.io/fedora-kickstarts.git?#0123abcd",
                 "repo": [f"https://kojipkgs.fedoraproject.org/compose/rawhide/"
                          f"Fedora-Rawhide-{release}/compose/Everything/$arch/os/"]}
        if scratch:
            popts["scratch"] = True
        popts.update(opts or {})
        inst_tree = ("https://kojipkgs.fedoraproject.org/compose/rawhide/"
                     f"Fedora-Rawhide-{release}/compose/Everything/$arch/os/")
        with self._lock:
            if task_id is None:
                request = [name, version, arches, target, inst_tree, popts]
                task_id = self.add_task(method, request, owner=owner, state=state,
                                        create_ts=_T0)
            else:
                self.set_task_state(task_id, state)
                owner = self._user_by(self.tasks[task_id]["owner"])["name"]
            closed = state == TASK_STATES["CLOSED"]
            child_state = state if state != TASK_STATES["FREE"] else TASK_STATES["FREE"]
            target_info = {"build_tag": 299, "build_tag_name": "f44-build", "dest_tag": 294,
                           "dest_tag_name": "f44-updates-candidate", "id": 144, "name": target}
            for arch in arches:
                child_request = [name, version, release, arch, target_info, 299,
                                 {"create_event": 14011966, "create_ts": _T0 - 3600,
                                  "creation_time": _timestr(_T0 - 3600), "id": 563977,
                                  "state": 1},
                                 inst_tree.replace("$arch", arch), popts]
                cid = self.add_task(child_method, child_request, owner=owner, state=child_state,
                                    parent=task_id, arch=arch, label=arch,
                                    create_ts=_T0 + 1, priority=koji.PRIO_DEFAULT - 1)
                arch_files = dict(files.get(arch, {}))
                if extra_outputs:
                    arch_files.setdefault(f"tdl-{arch}.xml", b"<template/>\n")
                    arch_files.setdefault(ks, b"# kickstart\n")
                    arch_files.setdefault(f"koji-f44-build-{cid}-base.ks", b"# flattened ks\n")
                logs = {f"oz-{arch}.log": b"oz log\n"}
                for fname, src in list(arch_files.items()) + list(logs.items()):
                    if src is None:
                        src = f"{fname} from task {cid}\n".encode() * 64
                    self.add_file(f"{self.task_dir(cid)}/{fname}", src)
                if closed:
                    self._results[cid] = {"arch": arch, "files": list(arch_files),
                                          "logs": list(logs), "name": name,
                                          "release": release, "rpmlist": [], "task_id": cid,
                                          "version": version}
                elif state == TASK_STATES["FAILED"]:
                    self._results[cid] = Fault(1000, f"image build failed for {arch}")
            if not scratch:
                self.add_task("tagBuild", [294, None, False, None, True], owner=owner,
                              state=child_state, parent=task_id, label="tag",
                              create_ts=_T0 + 1290, priority=koji.PRIO_DEFAULT - 1)
            if closed:
                self._results[task_id] = (
                    None if scratch else
                    f"image build results in: /mnt/koji/packages/{name}/{version}/{release}/images")
            elif state == TASK_STATES["FAILED"]:
                self._results[task_id] = Fault(1000, "image build failed")
            return task_id

    def add_image_build(self, name: str = "Fedora-Cloud-Base", version: str = "Rawhide",
                        release: str = "20261125.n.0", arches: list[str] | tuple = ("x86_64",),
                        files: Mapping[str, Mapping[str, os.PathLike | str | bytes | None]]
                        | None = None, *, method: str = "image", owner: str = "releng",
                        state: int = BUILD_STATES["COMPLETE"], task: bool = True,
                        extra: dict | None = None) -> int:
        """Create a non-scratch image build: getBuild row, image archives, served files.

        Each image file becomes a listArchives row (size, sha256 ``checksum``,
        ``checksum_type`` 2, ``btype`` 'image', ``arch`` when queried with type='image', extra
        {'image': {'arch': ...}}) served at ``topurl/packages/<n>/<v>/<r>/images/<file>``.
        With ``task`` a parent task (plus children, see add_image_task) is created too.
        Returns the build id.
        """
        arches = list(arches)
        if files is None:
            files = {a: {f"{name}-{version}-{release}.{a}.raw.xz": None} for a in arches}
        task_id = None
        if task:
            task_state = (TASK_STATES["CLOSED"] if state == BUILD_STATES["COMPLETE"]
                          else TASK_STATES["FAILED"] if state == BUILD_STATES["FAILED"]
                          else TASK_STATES["OPEN"])
            task_id = self.add_image_task(name, version, release, arches, files, method=method,
                                          owner=owner, state=task_state, scratch=False,
                                          extra_outputs=False)
        with self._lock:
            bid = next(self._build_ids)
            user = self.users[owner]
            done = state != BUILD_STATES["BUILDING"]
            build = {
                "id": bid, "build_id": bid, "name": name, "version": version,
                "release": release, "epoch": None, "nvr": f"{name}-{version}-{release}",
                "state": state, "owner_id": user["id"], "owner_name": user["name"],
                "task_id": task_id, "package_id": 30_001, "package_name": name,
                "volume_id": 0, "volume_name": "DEFAULT", "source": None, "draft": False,
                "creation_event_id": 130_000_001, "creation_ts": _T0,
                "creation_time": _timestr(_T0), "start_ts": _T0,
                "start_time": _timestr(_T0),
                "completion_ts": _T0 + 1300 if done else None,
                "completion_time": _timestr(_T0 + 1300) if done else None,
                "cg_id": None, "cg_name": None, "promoter_id": None, "promoter_name": None,
                "promotion_time": None, "promotion_ts": None,
                "extra": extra if extra is not None else {"typeinfo": {"image": {}}},
            }
            self.builds[bid] = build
            images_dir = koji.PathInfo(topdir="").imagebuild(build).lstrip("/")
            for arch in arches:
                for fname, src in files.get(arch, {}).items():
                    if src is None:
                        src = f"{fname} from build {bid}\n".encode() * 64
                    self.add_file(f"{images_dir}/{fname}", src)
                    local = self.file_path(f"{images_dir}/{fname}")
                    tid, tname, tdesc, text = _archive_type(fname)
                    self.archives.append({
                        "id": next(self._archive_ids), "build_id": bid, "type_id": tid,
                        "type_name": tname, "type_description": tdesc,
                        "type_extensions": text, "filename": fname,
                        "size": local.stat().st_size, "checksum": sha256_file(local),
                        "checksum_type": SHA256, "metadata_only": False,
                        "extra": {"image": {"arch": arch}}, "btype": "image",
                        "btype_id": _IMAGE_BTYPE_ID, "buildroot_id": None, "_arch": arch,
                    })
            return bid

    # --- views -----------------------------------------------------------------------------
    def _task_info(self, tid: int, request: bool = False) -> dict:
        t = self.tasks[tid]
        info = {k: v for k, v in t.items() if k not in ("request", "children")}
        for k in ("create", "start", "completion"):
            info[f"{k}_time"] = _timestr(t[f"{k}_ts"])
        if request:
            info["request"] = t["request"]
        return info

    def _owner_name(self, uid: int) -> str:
        return self._user_by(uid)["name"]

    def _bus_task(self, tid: int) -> dict:
        t = self.tasks[tid]
        info = self._task_info(tid, request=True)
        for k in ("create", "start", "completion"):
            info[f"{k}_time"] = info.pop(f"{k}_ts")
        info.pop("weight")
        info["owner"] = self._owner_name(t["owner"])
        info["host_name"] = "buildvm-x86-21.iad2.fedoraproject.org" if t["host_id"] else None
        info["url"] = f"{self.base_url}/koji/taskinfo?taskID={tid}"
        res = self._results.get(tid)
        info["result"] = None if isinstance(res, Fault) else res
        info["children"] = [self._bus_task(c) for c in t["children"]]
        if t["parent"] is not None:
            info.pop("request")
        return info

    def task_state_change_body(self, task_id: int, old: str = "OPEN",
                               new: str | None = None) -> dict:
        """Body of ``buildsys.task.state.change`` as koji-fedoramessaging publishes it."""
        t = self.tasks[task_id]
        return {
            "id": task_id, "method": t["method"], "owner": self._owner_name(t["owner"]),
            "old": old, "new": new or TASK_STATES[t["state"]], "attribute": "state",
            "info": self._bus_task(task_id), "base_url": self.base_url,
            "files_base_url": self.topurl + "/work", "instance": "primary",
            # The plugin's "useful identifier from the request": last path part of request[0]
            # (the image name for image tasks); the schema requires a string.
            "srpm": str(t["request"][0] if t["request"] else "/").split("/")[-1],
        }

    def build_state_change_body(self, build_id: int, old: int = BUILD_STATES["BUILDING"],
                                new: int | None = None) -> dict:
        """Body of ``buildsys.build.state.change`` (new = 1 COMPLETE) with the task tree."""
        b = self.builds[build_id]
        task = self._bus_task(b["task_id"]) if b["task_id"] else None
        return {
            "build_id": build_id, "name": b["name"], "version": b["version"],
            "release": b["release"], "epoch": b["epoch"], "owner": b["owner_name"],
            "old": old, "new": b["state"] if new is None else new, "attribute": "state",
            "task_id": b["task_id"], "task": task,
            "request": task["request"] if task else None, "instance": "primary",
            "base_url": self.base_url, "files_base_url": self.topurl + "/work",
            "url": f"{self.base_url}/koji/buildinfo?buildID={build_id}",
            "creation_time": datetime.datetime.fromtimestamp(b["creation_ts"],
                                                             datetime.UTC).isoformat(),
            "completion_time": (datetime.datetime.fromtimestamp(b["completion_ts"],
                                                                datetime.UTC).isoformat()
                                if b["completion_ts"] else None),
        }

    def calls_to(self, method: str) -> list[HubCall]:
        """Recorded calls of one XML-RPC method (including those inside multiCall)."""
        return [c for c in self.calls if c.method == method]

    # --- XML-RPC dispatch ------------------------------------------------------------------
    def _dispatch(self, method: str, params: tuple, multicall: bool = False) -> Any:
        args, kwargs = koji.decode_args(*params)
        user = self._ctx.user
        self.calls.append(HubCall(method, tuple(args), dict(kwargs),
                                  user["name"] if user else None, multicall))
        queue = self._faults.get(method)
        if queue:
            entry = queue[0]
            if entry[1] is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    queue.pop(0)
            raise entry[0]
        fn = getattr(self, f"_rpc_{method}", None)
        if fn is None:
            raise koji.GenericError(f"Invalid method: {method}")
        try:
            with self._lock:
                return fn(*args, **kwargs)
        except TypeError as exc:
            if "argument" in str(exc):
                raise koji.ParameterError(str(exc)) from exc
            raise

    def _rpc_multiCall(self, calls: list) -> list:  # noqa: N802 - Koji's method name
        out: list = []
        for call in calls:
            try:
                if call.get("methodName") == "multiCall":
                    raise koji.GenericError("Cannot call multiCall from within a multiCall")
                out.append([self._dispatch(call["methodName"], tuple(call.get("params", ())),
                                           multicall=True)])
            except Fault as fault:
                out.append({"faultCode": fault.faultCode, "faultString": fault.faultString,
                            "traceback": []})
            except koji.GenericError as exc:
                out.append({"faultCode": exc.faultCode, "faultString": str(exc),
                            "traceback": traceback.format_exception_only(type(exc), exc)})
        return out

    def _rpc_getKojiVersion(self) -> str:  # noqa: N802
        return self.koji_version

    def _rpc_getAPIVersion(self) -> int:  # noqa: N802
        return koji.API_VERSION

    def _rpc_login(self, username: str, password: str, opts: Any = None,  # noqa: ARG002
                   renew: bool = False, exclusive: bool = False) -> dict:
        if username not in self.users or self._passwords.get(username) != password:
            raise koji.AuthError("Invalid username or password")
        return self._new_session(username)

    def _rpc_sslLogin(self, proxyuser: str | None = None, proxyauthtype: Any = None,  # noqa: N802
                      renew: bool = False, exclusive: bool = False) -> dict:
        cn = self._ctx.peer_cn
        if not self._ctx.ssl_path or cn is None:
            raise koji.AuthError("could not find client certificate")
        if cn not in self.users:
            raise koji.AuthError(f"Unknown user: {cn}")
        return self._new_session(cn)

    def _rpc_logout(self, session_id: int | None = None) -> None:
        return None

    def _rpc_getLoggedInUser(self) -> dict | None:  # noqa: N802
        return dict(self._ctx.user) if self._ctx.user else None

    def _rpc_hasPerm(self, perm: str, strict: bool = False) -> bool:  # noqa: N802
        return self._has_perm(self._ctx.user, perm)

    def _rpc_getUser(self, userInfo: Any = None, strict: bool = False,  # noqa: N802, N803
                     krb_princs: bool = True, groups: bool = False) -> dict | None:
        if userInfo is None:
            user = self._ctx.user
        elif isinstance(userInfo, dict):
            user = self._user_by(userInfo.get("id") or userInfo.get("name"))
        else:
            user = self._user_by(userInfo)
        if user is None and strict:
            raise koji.GenericError(f"No such user: {userInfo}")
        return dict(user) if user else None

    def _rpc_getTaskInfo(self, task_id: Any, request: bool = False,  # noqa: N802
                         strict: bool = False) -> Any:
        if isinstance(task_id, list):
            return [self._rpc_getTaskInfo(t, request, strict) for t in task_id]
        if task_id not in self.tasks:
            if strict:
                raise koji.GenericError(f"No such task: {task_id}")
            return None
        return self._task_info(task_id, request)

    def _rpc_getTaskChildren(self, task_id: int, request: bool = False,  # noqa: N802
                             strict: bool = False) -> list:
        if task_id not in self.tasks:
            if strict:
                raise koji.GenericError(f"No such task: {task_id}")
            return []
        return [self._task_info(c, request) for c in self.tasks[task_id]["children"]]

    def _rpc_getTaskResult(self, task_id: int, raise_fault: bool = True) -> Any:  # noqa: N802
        t = self.tasks.get(task_id)
        if t is None:
            raise koji.GenericError(f"No such task: {task_id}")
        state = t["state"]
        if state == TASK_STATES["CANCELED"]:
            raise koji.GenericError(f"Task {task_id} is canceled")
        if state not in (TASK_STATES["CLOSED"], TASK_STATES["FAILED"]):
            raise koji.GenericError(f"Task {task_id} is not finished")
        result = self._results.get(task_id)
        if isinstance(result, Fault):
            if raise_fault:
                raise result
            return {"faultCode": result.faultCode, "faultString": result.faultString}
        return result

    def _rpc_listTaskOutput(self, task_id: int, stat: bool = False,  # noqa: N802
                            all_volumes: bool = False, strict: bool = False) -> Any:
        prefix = self.task_dir(task_id) + "/"
        names = sorted(k[len(prefix):] for k in self._files if k.startswith(prefix))
        if not names and strict:
            raise koji.GenericError(f"Task {task_id} has no output")
        if stat:
            out = {}
            for n in names:
                st = self._files[prefix + n].path.stat()
                # the hub sends sizes/times as strings (XML-RPC ints are 32-bit)
                entry = {"st_size": str(st.st_size), "st_atime": str(st.st_atime),
                         "st_mtime": str(st.st_mtime), "st_ctime": str(st.st_ctime)}
                out[n] = {"DEFAULT": entry} if all_volumes else entry
            return out
        if all_volumes:
            return {n: ["DEFAULT"] for n in names}
        return names

    def _find_build(self, info: Any) -> dict | None:
        if isinstance(info, int):
            return self.builds.get(info)
        if isinstance(info, str):
            if info.isdigit():
                return self.builds.get(int(info))
            return next((b for b in self.builds.values() if b["nvr"] == info), None)
        if isinstance(info, dict):
            if "id" in info:
                return self.builds.get(info["id"])
            return next((b for b in self.builds.values()
                         if all(b.get(k) == info.get(k) for k in ("name", "version", "release"))),
                        None)
        return None

    def _rpc_getBuild(self, buildInfo: Any, strict: bool = False) -> dict | None:  # noqa: N802, N803
        b = self._find_build(buildInfo)
        if b is None:
            if strict:
                raise koji.GenericError(f"No such build: {buildInfo}")
            return None
        return dict(b)

    def _rpc_listArchives(self, buildID: int | None = None, buildrootID: Any = None,  # noqa: N802, N803
                          componentBuildrootID: Any = None, hostID: Any = None,  # noqa: N803
                          type: str | None = None, filename: str | None = None,  # noqa: A002
                          size: int | None = None, checksum: str | None = None,
                          checksum_type: int | None = None,
                          typeInfo: dict | None = None,  # noqa: N803
                          queryOpts: dict | None = None, imageID: Any = None,  # noqa: N803
                          archiveID: int | None = None, strict: bool = False) -> Any:
        if type not in (None, "image"):
            return []
        out = []
        for a in self.archives:
            if buildID is not None and a["build_id"] != buildID:
                continue
            if filename is not None and a["filename"] != filename:
                continue
            if archiveID is not None and a["id"] != archiveID:
                continue
            if checksum is not None and a["checksum"] != checksum:
                continue
            if typeInfo and typeInfo.get("arch") not in (None, a["_arch"]):
                continue
            row = {k: v for k, v in a.items() if k != "_arch"}
            if type == "image":
                row["arch"] = a["_arch"]
            out.append(row)
        if strict and not out:
            raise koji.GenericError("No archives found.")
        return _query_opts(out, queryOpts)

    def _rpc_listTasks(self, opts: dict | None = None,  # noqa: N802
                       queryOpts: dict | None = None) -> Any:  # noqa: N803
        opts = opts or {}
        out = []
        for tid, t in self.tasks.items():
            if "owner" in opts:
                owners = opts["owner"] if isinstance(opts["owner"], list) else [opts["owner"]]
                ids = {self._user_by(o)["id"] if isinstance(o, str) and self._user_by(o) else o
                       for o in owners}
                if t["owner"] not in ids:
                    continue
            if "method" in opts and t["method"] != opts["method"]:
                continue
            if "state" in opts and t["state"] not in opts["state"]:
                continue
            if "parent" in opts:
                want = opts["parent"]
                if (t["parent"] not in want) if isinstance(want, list) else t["parent"] != want:
                    continue
            if "not_parent" in opts and t["parent"] == opts["not_parent"]:
                continue
            if "id" in opts and tid not in opts["id"]:
                continue
            if "createdAfter" in opts and t["create_ts"] <= _ts(opts["createdAfter"]):
                continue
            if "createdBefore" in opts and t["create_ts"] >= _ts(opts["createdBefore"]):
                continue
            row = self._task_info(tid)
            user = self._user_by(t["owner"])
            row.update(owner_name=user["name"], owner_type=user["usertype"],
                       host_name=None)
            res = self._results.get(tid)
            if opts.get("decode"):
                row["request"] = t["request"]
                row["result"] = None if isinstance(res, Fault) else res
            else:
                row["request"] = dumps(tuple(t["request"]), t["method"], allow_none=1)
                row["result"] = (None if tid not in self._results
                                 else dumps((res,), methodresponse=1, allow_none=1)
                                 if not isinstance(res, Fault) else None)
            out.append(row)
        return _query_opts(out, queryOpts)

    def _check_target(self, target: str) -> None:
        if self.targets is not None and target not in self.targets:
            raise koji.GenericError(f"No such build target: {target}")

    def _create_task(self, method: str, request: list, priority: int | None) -> int:
        user = self._ctx.user
        prio = koji.PRIO_DEFAULT
        if priority:
            if priority < 0 and not self._has_perm(user, "admin"):
                raise koji.ActionNotAllowed("only admins may create high-priority tasks")
            prio += priority
        return self.add_task(method, request, owner=user["name"], state=TASK_STATES["FREE"],
                             create_ts=time.time(), priority=prio)

    def _rpc_buildImageOz(self, name: str, version: str, arches: list, target: str,  # noqa: N802
                          inst_tree: str, opts: dict | None = None,
                          priority: int | None = None) -> int:
        self._assert_perm("image")
        opts = opts or {}
        self._check_target(target)
        return self._create_task("image", [name, version, arches, target, inst_tree, opts],
                                 priority)

    def _rpc_buildImage(self, name: str, version: str, arch: str, target: str,  # noqa: N802
                        ksfile: str, img_type: str, opts: dict | None = None,
                        priority: int | None = None) -> int:
        if img_type not in ("livecd", "appliance", "livemedia"):
            raise koji.GenericError(f"Unrecognized image type: {img_type}")
        self._assert_perm(img_type, "image")
        self._check_target(target)
        return self._create_task(img_type, [name, version, arch, target, ksfile, opts or {}],
                                 priority)


def _ts(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    return datetime.datetime.fromisoformat(str(value)).replace(
        tzinfo=datetime.UTC).timestamp()


def _query_opts(rows: list[dict], query_opts: dict | None) -> Any:
    q = query_opts or {}
    order = q.get("order")
    if order:
        key = order.lstrip("-")
        rows = sorted(rows, key=lambda r: (r.get(key) is None, r.get(key)),
                      reverse=order.startswith("-"))
    offset = q.get("offset") or 0
    limit = q.get("limit")
    rows = rows[offset:offset + limit if limit is not None else None]
    if q.get("countOnly"):
        return len(rows)
    return rows
