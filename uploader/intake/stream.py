"""One streaming pass over an .raw.xz download: hash, decompress and hand out blocks as it arrives.

Used by `fetched` when a target's `needs` is "stream" (the AWS target). The compressed bytes are
hashed as they arrive and decompressed in the same pass (Python's lzma module: on this machine
it decodes faster than an `xz -d` child behind two pipes, and xz's multi-threaded decoding only
helps multi-block files read from a seekable file). The decompressed disk is cut into 512 KiB
blocks; all-zero blocks are skipped; the others go to every open sink (`block(index, data)`),
to the sparse raw file when another target of the process reads one (written at the block's
offset, so the zero blocks stay holes: the image is fetched and decompressed once for all
targets), and the compressed bytes to a file when a target reads the download as fetched.

Before the first byte, the raw size is read from the xz index at the end of the file with two
small HTTP range requests (its first 4 KiB and its last 256 KiB, put at their offsets in a sparse
file for `xz --list`): a snapshot's volume size must be known when it starts. The index is not
trusted beyond that: more decompressed bytes than it declares stop the stream (a decompression
bomb cannot get further than uploader.max_disk_mib), and liblzma checks the index against the
blocks at the end. A server that ignores ranges gets the classic path (download, then xz).

Memory stays bounded whatever the image size: one 1 MiB network chunk, at most one block of
decompressed output per decompress call, and the sinks' own bounded queues, whose waits slow
the reading of the socket (backpressure).

A body cut off mid-stream is resumed where it stopped (Range: bytes=N-); a server answering the
resumed request with the whole file has the first N bytes skipped. The sha256 covers exactly the
bytes decompressed, so a resumed download is verified like any other. Sinks never see the
verdict: on any failure intake calls `abort(why)` on each (the AWS sink deletes its pending
snapshot), and only a verified image reaches the handlers.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import lzma
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests

from shared.config import Config
from shared.errors import BadInput, VerificationFailed
from shared.http import IncompleteAnswer
from uploader.intake import fetch
from uploader.model import Clients

log = logging.getLogger(__name__)

BLOCK_SIZE = 512 * 1024  # EBS direct API block; a multiple of every filesystem block
_ZERO_BLOCK = bytes(BLOCK_SIZE)
HEAD_BYTES = 4096
TAIL_BYTES = 256 * 1024


def declared_size(http: requests.Session, url: str, work: Path, *, config: Config,
                  clients: Clients, size: int | None) -> int | None:
    """The raw size an .raw.xz declares in its index, read with two range requests; None if
    the server does not serve ranges or the index is not within the last TAIL_BYTES."""
    tail = _get_range(http, url, f"-{TAIL_BYTES}", config=config)
    if tail is None:
        return None
    body, first, total = tail
    if size is not None and total != size:
        raise VerificationFailed(f"{url}: server has {total} bytes, the source records {size}")
    head = _get_range(http, url, f"0-{HEAD_BYTES - 1}", config=config)
    if head is None:
        return None
    probe = work / "index.xz"
    with open(probe, "wb") as f:  # sparse: only the head and the tail take disk space
        f.truncate(total)
        f.write(head[0])
        f.seek(first)
        f.write(body)
    try:
        return fetch.xz_declared_size(probe, clients=clients,
                                      timeout=config.uploader.decompress_timeout)
    except VerificationFailed as exc:
        log.info("%s: xz index not readable from its last %d bytes (%s): no streaming",
                 url, TAIL_BYTES, exc)
        return None
    finally:
        probe.unlink()


def _get_range(http: requests.Session, url: str, spec: str, *,
               config: Config) -> tuple[bytes, int, int] | None:
    """(body, first byte, total size) of `Range: bytes=spec`; None if the server sent the whole
    file instead (it does not serve ranges)."""

    def attempt() -> tuple[bytes, int, int] | None:
        resp = fetch.open_url(http, url, headers={"Range": f"bytes={spec}"})
        try:
            if resp.status_code == 404:
                raise BadInput(f"{url}: HTTP 404")
            if resp.status_code != 206:
                return None
            first, total = _content_range(url, resp)
            body = bytearray()
            for chunk in _chunks(url, resp, first):
                body += chunk
                if len(body) > TAIL_BYTES:  # never more than asked for
                    raise VerificationFailed(f"{url}: range answer larger than asked for")
            announced = resp.headers.get("Content-Length")
            if announced is not None and announced.isdigit() and len(body) != int(announced):
                raise IncompleteAnswer(f"{url}: range cut off after {len(body)} bytes")
            return bytes(body), first, total
        finally:
            resp.close()

    return fetch.until_complete(url, config, attempt)


def _content_range(url: str, resp: requests.Response) -> tuple[int, int]:
    """(first byte, total size) from a 206's Content-Range: "bytes first-last/total"."""
    value = resp.headers.get("Content-Range", "")
    unit, _, rest = value.partition(" ")
    span, _, total = rest.partition("/")
    first = span.partition("-")[0]
    if unit != "bytes" or not first.isdigit() or not total.isdigit():
        raise VerificationFailed(f"{url}: unusable Content-Range {value!r}")
    return int(first), int(total)


class _Blocks:
    """Decompressed bytes in, 512 KiB blocks out to the sinks and the raw file."""

    def __init__(self, sinks: Mapping[str, Any], raw_fd: int | None, limit: int) -> None:
        self.sinks = sinks
        self.raw_fd = raw_fd
        self.limit = limit  # bytes the xz index declares: never more
        self.offset = 0  # decompressed bytes handed out as whole blocks
        self.pending = bytearray()

    def add(self, data: bytes) -> None:
        if self.offset + len(self.pending) + len(data) > self.limit:
            raise VerificationFailed(
                f"decompresses past the {self.limit} bytes its xz index declares")
        self.pending += data
        while len(self.pending) >= BLOCK_SIZE:
            self._emit(bytes(self.pending[:BLOCK_SIZE]), BLOCK_SIZE)
            del self.pending[:BLOCK_SIZE]

    def end(self) -> int:
        """Hand out the last, partial block (zero-padded); the decompressed size."""
        if self.pending:
            length = len(self.pending)
            self._emit(bytes(self.pending) + bytes(BLOCK_SIZE - length), length)
            self.pending.clear()
        if self.raw_fd is not None:
            os.ftruncate(self.raw_fd, self.offset)  # trailing zeros become a hole too
        return self.offset

    def _emit(self, block: bytes, length: int) -> None:
        index = self.offset // BLOCK_SIZE
        if block == _ZERO_BLOCK:
            for sink in self.sinks.values():
                sink.zero()
        else:
            for sink in self.sinks.values():
                sink.block(index, block)
            if self.raw_fd is not None:
                os.pwrite(self.raw_fd, block[:length], self.offset)
        self.offset += length


class _Xz:
    """An lzma decoder for one or more concatenated .xz streams, handing output to `_Blocks`.

    After the first decoding error it only records it (the download goes on being hashed, so
    a corrupted transfer is reported as the sha256 mismatch it is)."""

    def __init__(self, out: _Blocks) -> None:
        self.out = out
        self.dec = lzma.LZMADecompressor(lzma.FORMAT_XZ)
        self.error: str | None = None
        self.ended = False  # a whole stream was decoded and nothing has come after it yet

    def feed(self, data: bytes) -> None:
        if self.error is not None:
            return
        try:
            while data or not self.dec.needs_input:
                if self.dec.eof:  # another stream may follow, after 4-byte-aligned zero padding
                    data = self.dec.unused_data + data
                    stripped = data.lstrip(b"\0")
                    if not stripped:
                        return
                    self.dec = lzma.LZMADecompressor(lzma.FORMAT_XZ)
                    data = stripped
                self.ended = False
                self.out.add(self.dec.decompress(data, max_length=BLOCK_SIZE))
                data = b""
                if self.dec.eof:
                    self.ended = True
                    if not self.dec.unused_data:
                        return
        except lzma.LZMAError as exc:
            self.error = f"not valid xz: {exc}"


def stream_xz(http: requests.Session, url: str, *, config: Config, size: int | None,
              sha256: str | None, disk_size: int, sinks: Mapping[str, Any],
              raw_path: Path | None, file_path: Path | None) -> fetch.Download:
    """Download, verify and decompress url in one pass (see the module docstring).

    Returns the measured size and sha256 of the download, only if it matched the source and
    decompressed to exactly `disk_size` bytes; raises VerificationFailed, BadInput or
    TransientError otherwise. The caller aborts the sinks on any exception.
    """
    fetch.check_allowed(url, fetch.allowed_roots(config))
    expected_sha = sha256.lower() if sha256 else None
    digest = hashlib.sha256()
    got = 0
    with _open_or_none(raw_path) as raw_fd, _open_or_none(file_path) as file_fd:
        blocks = _Blocks(sinks, raw_fd, disk_size)
        xz = _Xz(blocks)

        def attempt() -> None:
            nonlocal got
            resumed = got > 0
            resp = fetch.open_url(http, url,
                                  headers={"Range": f"bytes={got}-"} if resumed else None)
            skip = 0
            try:
                if resp.status_code == 404:
                    raise BadInput(f"{url}: HTTP 404")
                if resumed and resp.status_code == 206:
                    first, _ = _content_range(url, resp)
                    if first != got:
                        raise VerificationFailed(f"{url}: resumed at byte {first}, not {got}")
                elif resumed:
                    skip = got  # the whole file again: drop what was already used
                else:
                    _check_announced(url, resp, size)
                for chunk in _chunks(url, resp, got):
                    if skip:
                        dropped = min(skip, len(chunk))
                        skip -= dropped
                        chunk = chunk[dropped:]
                        if not chunk:
                            continue
                    got += len(chunk)
                    if size is not None and got > size:
                        raise VerificationFailed(f"{url}: more than the recorded {size} bytes")
                    digest.update(chunk)
                    if file_fd is not None:
                        os.write(file_fd, chunk)
                    xz.feed(chunk)
            finally:
                resp.close()
            if size is not None and got != size:
                raise IncompleteAnswer(f"{url}: got {got} bytes, the source records {size}")

        fetch.until_complete(url, config, attempt)
        actual = digest.hexdigest()
        if expected_sha is not None and actual != expected_sha:
            raise VerificationFailed(
                f"{url}: sha256 mismatch: got {actual}, the source records {expected_sha}")
        if xz.error is None and not xz.ended:
            xz.error = "not valid xz: the stream ends early (truncated)"
        if xz.error is not None:
            raise VerificationFailed(f"{url}: {xz.error}")
        made = blocks.end()
        if made != disk_size:
            raise VerificationFailed(
                f"{url}: decompressed to {made} bytes, its xz index declares {disk_size}")
    return fetch.Download(file_path or Path(url), got, actual)


def _check_announced(url: str, resp: requests.Response, size: int | None) -> None:
    announced = resp.headers.get("Content-Length")
    if size is not None and announced is not None and announced.isdigit() \
            and int(announced) != size:
        raise VerificationFailed(
            f"{url}: server announces {announced} bytes, the source records {size}")


def _chunks(url: str, resp: requests.Response, before: int) -> Iterator[bytes]:
    """The body in CHUNK pieces; a cut-off body is IncompleteAnswer (resumed by the caller)."""
    it = resp.iter_content(fetch.CHUNK)
    read = 0
    while True:
        try:
            chunk = next(it)
        except StopIteration:
            return
        except fetch.CUT_OFF as exc:
            raise IncompleteAnswer(
                f"{url}: {exc.__class__.__name__} after {before + read} bytes") from exc
        read += len(chunk)
        yield chunk


@contextlib.contextmanager
def _open_or_none(path: Path | None) -> Iterator[int | None]:
    """A write-only fd for `path` (created, truncated), or None for no path."""
    if path is None:
        yield None
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        yield fd
    finally:
        os.close(fd)
