"""File helpers every side needs the same way: a durable rename and a file's sha256."""

from __future__ import annotations

import hashlib
import os


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file or a directory by name: a rename is durable only once its directory is."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 hex of a file, streamed: images and artifacts are hundreds of MiB."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
