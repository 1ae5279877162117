"""Process helpers for the stand-ins: free ports, bounded waits, processes stopped by PID.

Every process a stand-in starts is stopped by its PID, even when the caller fails, and every wait
is bounded.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from standins import StandinError


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessExited(StandinError):
    """A process we were waiting on died; ``wait_until`` never retries this one."""


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``check()`` until it returns something truthy; raise TimeoutError naming ``what``.

    Exceptions from ``check`` count as "not yet" (services refuse connections while starting),
    except ProcessExited, which ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except ProcessExited:
            raise
        except Exception as exc:  # "not ready yet"
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


class ManagedProcess:
    """A subprocess whose output goes to a log file and that is always stopped by its PID.

    Output goes to a file, not a pipe, so a chatty process can never block on a full pipe, and
    the log survives for failure messages.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: pathlib.Path,
        env: Mapping[str, str] | None = None,
        cwd: pathlib.Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=str(cwd) if cwd else None,
            # Own session: a Ctrl-C on pytest does not race our orderly TERM-then-KILL.
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """PID of the process."""
        return self.proc.pid

    def alive(self) -> bool:
        """True while the process has not exited."""
        return self.proc.poll() is None

    def output(self) -> str:
        """Everything the process wrote to stdout/stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of output, for failure messages."""
        return "\n".join(self.output().splitlines()[-lines:])

    def kill(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to the process (by PID) if it is still running."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)

    def wait_for_output(self, text: str, timeout: float) -> None:
        """Wait until ``text`` appears in the output; fail early if the process dies."""

        def seen() -> bool:
            if text in self.output():
                return True
            if not self.alive():
                raise ProcessExited(
                    f"{self.name} (pid {self.pid}) exited with {self.proc.returncode} before "
                    f"printing {text!r}:\n{self.tail()}"
                )
            return False

        try:
            wait_until(seen, timeout, f"{self.name} to print {text!r}", interval=0.05)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- {self.name} output ---\n{self.tail()}") from None

    def stop(self, timeout: float = 10.0) -> int | None:
        """TERM, wait up to ``timeout`` seconds, then KILL. Returns the exit status."""
        try:
            if self.alive():
                self.kill(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.kill(signal.SIGKILL)
                    self.proc.wait(timeout=10)
            return self.proc.returncode
        finally:
            self._log.close()


def start_on_free_port(name: str, command: Callable[[int], Sequence[str]],
                       ready: Callable[[int], bool], log: pathlib.Path, *, timeout: float,
                       attempts: int = 3, interval: float = 0.1,
                       cwd: pathlib.Path | None = None) -> tuple[ManagedProcess, int]:
    """Start ``command(port)`` on a free port until ``ready(port)`` holds; (process, port).

    Another process may take the port between ``free_port`` and the bind, so a start that never
    gets ready is stopped and tried again on a new port, at most ``attempts`` times; then
    StandinError names the last failure.
    """
    last: Exception | None = None
    for _ in range(attempts):
        port = free_port()
        proc = ManagedProcess(name, list(command(port)), log, cwd=cwd)

        def answers(proc: ManagedProcess = proc, port: int = port) -> bool:
            if not proc.alive():
                raise ProcessExited(f"{name} exited:\n{proc.tail()}")
            return ready(port)

        try:
            wait_until(answers, timeout, f"{name} on port {port}", interval=interval)
        except Exception as exc:
            last = exc
            proc.stop()
            continue
        return proc, port
    raise StandinError(f"{name} did not start: {last}")
