"""Write the report directory atomically: readers see the old tree or the new one, never a mix.

The new tree is built in a temporary directory beside DIR (same filesystem, so renames are
atomic), fsynced, and then swapped in:

- Linux: renameat2(RENAME_EXCHANGE) swaps the two directories in one step, so there is no
  instant at which DIR is missing; the old tree, now under the temporary name, is removed;
- elsewhere (or if the kernel/filesystem refuses): DIR is renamed aside, the new tree renamed
  to DIR, the old one removed (DIR is missing for the instant between the two renames).

Anything failing before the swap removes the temporary tree and leaves DIR untouched. A run that
is killed (SIGKILL, power loss) cannot clean up: its temporary tree, or the previous tree it was
removing, stays beside DIR as ``.DIR.new-*`` / ``.DIR.old-*``. Publishing holds an exclusive lock
(``.DIR.lock`` beside DIR, released by the kernel when a process dies), and whoever holds it first
removes such leftovers, so they never pile up, and puts a previous tree back if a killed fallback
swap left DIR missing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from shared.errors import RunError
from shared.files import fsync_path

log = logging.getLogger(__name__)

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2; False if unsupported here."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


LOCK_TIMEOUT = 600.0  # seconds to wait for another run publishing the same DIR

_held: set[Path] = set()  # directories this process holds the lock of (the lock is re-entrant)
_held_lock = threading.Lock()


@contextlib.contextmanager
def locked(directory: str | os.PathLike, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the exclusive lock of ``directory`` (``.DIR.lock`` beside it); then clean up.

    Waits at most ``timeout`` seconds for another process holding it (RunError after that).
    Re-entrant within a process. Leftovers of killed runs are removed once the lock is held.
    """
    final = Path(directory).absolute()
    with _held_lock:
        if final in _held:
            yield
            return
    final.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(final.parent / f".{final.name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RunError(f"another fedimg-report has been writing {final} for more "
                                   f"than {timeout:.0f} s") from None
                time.sleep(0.2)
        with _held_lock:
            _held.add(final)
        try:
            remove_leftovers(final)
            yield
        finally:
            with _held_lock:
                _held.discard(final)
    finally:
        os.close(fd)  # releases the lock


def remove_leftovers(final: Path) -> list[Path]:
    """Remove the temporary trees of killed runs beside ``final``; returns what was removed.

    Only call with the lock held (``locked``): another run's trees are in use while it holds it.
    """
    removed = []
    old = sorted(final.parent.glob(f".{final.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if old and not final.exists() and not final.is_symlink():
        # a fallback swap was killed between its two renames: the previous tree is the site
        os.rename(old.pop(), final)
        fsync_path(final.parent)
        log.warning("%s was missing after a killed run; put the previous tree back", final)
    for path in [*final.parent.glob(f".{final.name}.new-*"), *old]:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.info("removed %d temporary tree(s) left by killed runs beside %s", len(removed), final)
    return removed


def write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    for rel, data in files.items():
        target = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ValueError(f"refusing to write outside the report: {rel!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def publish(directory: str | os.PathLike, files: Mapping[str, bytes]) -> None:
    """Replace ``directory`` by a tree holding exactly ``files`` ({relative path: bytes})."""
    publish_with(directory, lambda root: write_tree(root, files))


def publish_with(directory: str | os.PathLike, build: Callable[[Path], None]) -> None:
    """Replace ``directory`` by the tree ``build(root)`` writes into the empty ``root``."""
    final = Path(directory).absolute()
    with locked(final):
        _publish(final, build)


def _publish(final: Path, build: Callable[[Path], None]) -> None:
    new = Path(tempfile.mkdtemp(prefix=f".{final.name}.new-", dir=final.parent))
    try:
        build(new)
        for path in new.rglob("*"):
            if path.is_file() and path.stat().st_nlink == 1:
                # hard links are files of the previous tree, durable already
                fsync_path(path)
                os.chmod(path, 0o644)
        for d in [new, *(p for p in new.rglob("*") if p.is_dir())]:
            os.chmod(d, 0o755)  # mkdtemp makes 0700; the web server must read it
            fsync_path(d)
        if final.exists() or final.is_symlink():
            if not final.is_dir() or final.is_symlink():
                raise NotADirectoryError(f"{final} exists and is not a directory")
            if _exchange(new, final):
                old = new  # after the exchange the temporary name holds the previous tree
            else:
                old = final.parent / f".{final.name}.old-{os.getpid()}"
                os.rename(final, old)
                try:
                    os.rename(new, final)
                except BaseException:
                    os.rename(old, final)  # put the previous tree back before failing
                    raise
            fsync_path(final.parent)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(new, final)
            fsync_path(final.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            if new.exists() and new != final:
                shutil.rmtree(new, ignore_errors=True)
        raise
