"""Write the report directory atomically: readers see the old tree or the new one, never a mix.

The new tree is built in a temporary directory beside DIR (same filesystem, so renames are
atomic), fsynced, and then swapped in:

- Linux: renameat2(RENAME_EXCHANGE) swaps the two directories in one step, so there is no
  instant at which DIR is missing; the old tree, now under the temporary name, is removed;
- elsewhere (or if the kernel/filesystem refuses): DIR is renamed aside, the new tree renamed
  to DIR, the old one removed (DIR is missing for the instant between the two renames).

Anything failing before the swap removes the temporary tree and leaves DIR untouched.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

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


def write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    for rel, data in files.items():
        target = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ValueError(f"refusing to write outside the report: {rel!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(target, 0o644)


def publish(directory: str | os.PathLike, files: Mapping[str, bytes]) -> None:
    """Replace ``directory`` by a tree holding exactly ``files`` ({relative path: bytes})."""
    final = Path(directory).absolute()
    final.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{final.name}.new-", dir=final.parent))
    try:
        write_tree(new, files)
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
