"""Detached processes of the local demo stack, tracked by PID files.

The demo's processes outlive the command that starts them, so each one is recorded in
``run/<name>.json`` (PID + the command line /proc showed at start) and is only ever signalled
after checking that the PID still runs that command line: a recycled PID is never killed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any, Protocol

from standins import REPO_ROOT, StandinError
from standins.processes import wait_until

READY_TIMEOUT = 90.0  # seconds for any one part to become ready (2 busy cores)
STOP_TIMEOUT = 15.0  # seconds between TERM and KILL


class Stack(Protocol):
    """What these helpers need of a stack: its state directories (``run/``, ``logs/``)."""

    def dir(self, name: str) -> pathlib.Path: ...


@dataclasses.dataclass
class Service:
    """A long-running part: how to start it and how to tell that it is ready."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ready: Callable[[Any, Service], bool]  # (the stack, this service) -> ready?
    cwd: pathlib.Path = REPO_ROOT


def _pidfile(stack: Stack, name: str) -> pathlib.Path:
    return stack.dir("run") / f"{name}.json"


def log_path(stack: Stack, name: str) -> pathlib.Path:
    return stack.dir("logs") / f"{name}.log"


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [p.decode(errors="replace") for p in raw.split(b"\0") if p]


def running_pid(stack: Stack, name: str) -> int | None:
    """PID of our ``name`` process if it still runs the command line we started."""
    try:
        record = json.loads(_pidfile(stack, name).read_text())
    except (OSError, ValueError):
        return None
    pid = int(record["pid"])
    return pid if _cmdline(pid) == record["argv"] else None


def start(stack: Stack, svc: Service) -> int:
    """Start ``svc`` detached (own session, output to its log) and record its PID."""
    log = log_path(stack, svc.name)
    with open(log, "wb") as out:  # a fresh log per start: readiness checks read it from the top
        proc = subprocess.Popen(svc.argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=svc.env, cwd=svc.cwd,
                                start_new_session=True)
    # Record what /proc shows for it (the interpreter may rewrite argv[0]); retry briefly.
    argv = wait_until(lambda: _cmdline(proc.pid), 5, f"{svc.name} to appear in /proc", 0.02)
    _pidfile(stack, svc.name).write_text(json.dumps({"pid": proc.pid, "argv": argv}))
    return proc.pid


def stop(stack: Stack, name: str) -> bool:
    """TERM our ``name`` process by PID, KILL it after STOP_TIMEOUT. True if one was running."""
    pid = running_pid(stack, name)
    _pidfile(stack, name).unlink(missing_ok=True)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent may still reap it


def log_tail(stack: Stack, name: str, lines: int = 25) -> str:
    try:
        text = log_path(stack, name).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(stack: Stack, svc: Service, timeout: float = READY_TIMEOUT) -> None:
    def check() -> bool:
        if running_pid(stack, svc.name) is None:
            raise StandinError(f"{svc.name} exited while starting; its log "
                             f"({log_path(stack, svc.name)}) ends with:\n"
                             f"{log_tail(stack, svc.name)}")
        return svc.ready(stack, svc)

    try:
        wait_until(check, timeout, f"{svc.name} to become ready", interval=0.1)
    except StandinError:
        raise
    except Exception as exc:
        raise StandinError(f"{exc}; its log ({log_path(stack, svc.name)}) ends with:\n"
                         f"{log_tail(stack, svc.name)}") from None
