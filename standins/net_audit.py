"""Which hosts a Python process tries to reach, seen through its audit hooks.

Why: "fetch only from configured locations" is a property of everything a process does, not of
one server's access log. An off-host request aimed at a made-up host would never show up in any
stand-in's log; Python raises the audit events ``socket.getaddrinfo`` (a name looked up) and
``socket.connect`` (a TCP connection opened) for every socket of every library (requests, koji,
pika, Twisted), so a hook sees each attempt before it can succeed or fail.

- In-process: ``with watching() as seen:`` collects ``Contact`` tuples while the block runs.
- In a subprocess: put ``SITE_DIR`` first on ``PYTHONPATH`` and name a file in the environment
  variable ``LOG_ENV``; its ``sitecustomize`` appends one line per contact to that file, which
  ``read_log`` turns back into contacts.

Audit hooks cannot be removed, so one hook is installed per process and sends to whichever
watchers are active.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

LOG_ENV = "FEDIMG_NET_AUDIT_LOG"
SITE_DIR = pathlib.Path(__file__).resolve().parent / "net_audit_site"


class Contact(NamedTuple):
    """One attempt to reach a host: ``event`` is "connect" or "lookup"."""

    event: str
    host: str
    port: int | None


_sinks: list[Callable[[Contact], None]] = []
_lock = threading.Lock()
_installed = False


def _hook(event: str, args: tuple) -> None:
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and len(address) >= 2:
            contact = Contact("connect", str(address[0]), int(address[1]))
        else:  # AF_UNIX and friends: a local path, not a host
            return
    elif event == "socket.getaddrinfo":
        host, port = args[0], args[1]
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        contact = Contact("lookup", str(host), port if isinstance(port, int) else None)
    else:
        return
    for sink in list(_sinks):
        sink(contact)


def _install() -> None:
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True


@contextlib.contextmanager
def watching() -> Iterator[list[Contact]]:
    """Collect every contact this process attempts while the block runs (all threads)."""
    _install()
    seen: list[Contact] = []
    _sinks.append(seen.append)
    try:
        yield seen
    finally:
        _sinks.remove(seen.append)


def record_to(path: os.PathLike | str) -> None:
    """Append every contact of this process, for its whole life, to ``path`` (one per line)."""
    _install()
    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the life of the process
    write_lock = threading.Lock()

    def sink(contact: Contact) -> None:
        with write_lock:
            out.write(f"{contact.event}\t{contact.host}\t{contact.port}\n")

    _sinks.append(sink)


def read_log(path: os.PathLike | str) -> list[Contact]:
    """Contacts written by ``record_to`` (an absent file: none)."""
    try:
        text = pathlib.Path(path).read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        event, host, port = line.split("\t")
        out.append(Contact(event, host, None if port == "None" else int(port)))
    return out


def subprocess_env(log_path: os.PathLike | str, env: dict[str, Any] | None = None) -> dict:
    """Environment entries that make a Python subprocess record its contacts to ``log_path``."""
    base = dict(env or {})
    path = base.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    base["PYTHONPATH"] = os.pathsep.join(p for p in (str(SITE_DIR), path) if p)
    base[LOG_ENV] = str(log_path)
    return base


def off_host(contacts: Iterable[Contact], allowed: Iterable[tuple[str, int]]) -> list[Contact]:
    """Contacts outside ``allowed`` (host, port) pairs; a lookup counts by its host alone."""
    pairs = set(allowed)
    hosts = {h for h, _ in pairs}
    return [c for c in contacts
            if (c.event == "connect" and (c.host, c.port) not in pairs)
            or (c.event == "lookup" and c.host not in hosts)]
