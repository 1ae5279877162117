"""Produce the two download artifacts from a sparse raw image, concurrently, with one deadline.

- qcow2: `qemu-img convert -c -O qcow2` with `-m 16 -W` (16 coroutines, out-of-order writes:
  measured 2x faster with identical size; `qemu-img check` passes). zlib + compat=0.10 is
  readable by any QEMU; zstd needs compat=1.1 (QEMU >= 5.1).
- raw.tar.xz: `tar --format=gnu --sparse` (GNU-format sparse members are what RHEL 6's tar
  reads; Python's tarfile cannot write sparse members) piped into multithreaded `xz`
  (multi-block output, which also decompresses in parallel).

Both run at the same time as child processes; xz is the long pole, so the qcow2 is finished
(hashed, stored) while xz still runs. Every child is killed and reaped on every way out of
`run_conversions` (error, timeout, KeyboardInterrupt). Children are also started under
`setpriv --pdeathsig KILL` where available, so they die with the thread that started them even
if this process is SIGKILLed and no `finally` runs.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from shared.errors import ConversionFailed, ConversionNoSpace, ConversionTimeout

log = logging.getLogger(__name__)

QCOW2 = "qcow2"
RAW_TAR_XZ = "raw.tar.xz"
FORMATS = (QCOW2, RAW_TAR_XZ)

POLL_INTERVAL = 0.2  # seconds between checks of the children; conversions take minutes
KILL_WAIT = 10.0  # seconds to reap a SIGKILLed child (it cannot ignore the signal)
_STDERR_TAIL = 2000  # characters of a failed command's stderr kept for the failure message


def qcow2_command(raw: Path, out: Path, compression: str) -> list[str]:
    compat = "0.10" if compression == "zlib" else "1.1"
    return [
        "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-c",
        "-o", f"compression_type={compression},compat={compat}",
        "-m", "16", "-W",
        str(raw), str(out),
    ]


def tar_command(directory: Path, member: str) -> list[str]:
    # --dereference: the member is a symlink named after the image, pointing at the raw file.
    # Fixed owner/mode: the archive should not leak the uploader's uid or a 0600 work file mode.
    return [
        "tar", "--format=gnu", "--sparse", "--dereference", "--create", "--file=-",
        "--owner=root:0", "--group=root:0", "--numeric-owner", "--mode=0644",
        f"--directory={directory}", "--", member,
    ]


def xz_command(threads: int) -> list[str]:
    return ["xz", "--compress", "--stdout", f"--threads={threads}"]


@dataclasses.dataclass(frozen=True)
class Result:
    """How one artifact's conversion ended: `error` is None on success."""

    fmt: str
    path: Path
    error: ConversionFailed | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _guarded(cmd: list[str]) -> list[str]:
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *cmd] if setpriv else cmd


class _Running:
    """One artifact's child processes (one for qcow2, tar + xz for raw.tar.xz)."""

    def __init__(self, fmt: str, out: Path) -> None:
        self.fmt = fmt
        self.out = out
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.stderr: list[IO[bytes]] = []

    def spawn(self, cmd: list[str], **kwargs) -> subprocess.Popen:
        err = tempfile.TemporaryFile()  # noqa: SIM115 - lives until close(), after the child
        self.stderr.append(err)
        proc = subprocess.Popen(_guarded(cmd), stderr=err, **kwargs)
        self.procs.append((cmd[0], proc))
        return proc

    def done(self) -> bool:
        return all(p.poll() is not None for _, p in self.procs)

    def result(self) -> Result:
        failed = [(name, p.returncode) for name, p in self.procs if p.returncode != 0]
        if not failed:
            return Result(self.fmt, self.out)
        text = " / ".join(f"{name} exited with {code}" for name, code in failed)
        detail = self._stderr_text()
        failure = ConversionNoSpace if "No space left on device" in detail else ConversionFailed
        return Result(self.fmt, self.out, failure(f"{text}: {detail}".strip(": ")))

    def _stderr_text(self) -> str:
        parts = []
        for err in self.stderr:
            err.seek(0)
            parts.append(err.read().decode("utf-8", "replace").strip())
        return " | ".join(p for p in parts if p)[-_STDERR_TAIL:]

    def kill(self) -> None:
        for _, p in self.procs:
            if p.poll() is None:
                p.kill()
        for name, p in self.procs:
            try:
                p.wait(timeout=KILL_WAIT)
            except subprocess.TimeoutExpired:  # pragma: no cover - uninterruptible I/O (D state)
                log.error("%s (pid %d) did not die within %s s of SIGKILL", name, p.pid, KILL_WAIT)

    def close(self) -> None:
        for err in self.stderr:
            err.close()


def _start_qcow2(raw: Path, out: Path, compression: str) -> _Running:
    run = _Running(QCOW2, out)
    run.spawn(qcow2_command(raw, out, compression),
              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return run


def _start_raw_tar_xz(member_dir: Path, member: str, out: Path, threads: int) -> _Running:
    run = _Running(RAW_TAR_XZ, out)
    # "xb": the temporary name is ours alone; never truncate someone else's file.
    with open(out, "wb") as sink:  # created (and locked) by Staging
        tar = run.spawn(tar_command(member_dir, member),
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        try:
            run.spawn(xz_command(threads), stdin=tar.stdout, stdout=sink)
        except BaseException:
            run.kill()
            run.close()
            raise
        finally:
            # Only xz holds the pipe's read end now, so tar gets SIGPIPE if xz dies.
            tar.stdout.close()
    return run


def run_conversions(
    raw: Path,
    member: str,
    outputs: dict[str, Path],
    *,
    compression: str,
    xz_threads: int,
    timeout: float,
    on_done: Callable[[Result], None],
) -> None:
    """Convert `raw` into every format in `outputs` (format -> temporary output path) at once.

    `member` is the file name inside the raw.tar.xz. `on_done(result)` is called in this thread
    as each conversion ends (success, failure or timeout), so a finished artifact is stored while
    the other is still being produced. Output files are left to the caller (it renames or
    deletes them); every child process is gone when this returns or raises.
    """
    deadline = time.monotonic() + timeout
    running: dict[str, _Running] = {}
    member_dir = Path(tempfile.mkdtemp(prefix=".fedimg-member-", dir=raw.parent))
    try:
        (member_dir / member).symlink_to(raw.resolve())
        for fmt, out in outputs.items():
            try:
                if fmt == QCOW2:
                    running[fmt] = _start_qcow2(raw, out, compression)
                elif fmt == RAW_TAR_XZ:
                    running[fmt] = _start_raw_tar_xz(member_dir, member, out, xz_threads)
                else:
                    raise ValueError(f"unknown download format {fmt!r}")
            except OSError as e:  # a missing tool, no space for the output file, ...
                on_done(Result(fmt, out, ConversionFailed(f"could not start: {e}")))
        while running:
            for fmt in [f for f, r in running.items() if r.done()]:
                run = running.pop(fmt)
                result = run.result()
                run.close()
                on_done(result)
            if running and time.monotonic() >= deadline:
                for fmt in list(running):
                    run = running.pop(fmt)
                    run.kill()
                    run.close()
                    on_done(Result(fmt, run.out, ConversionTimeout(
                        f"{fmt} conversion did not finish within {timeout:g} s")))
            if running:
                time.sleep(POLL_INTERVAL)
    finally:
        for run in running.values():
            run.kill()
            run.close()
        shutil.rmtree(member_dir, ignore_errors=True)

