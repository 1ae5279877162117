"""One streaming pass over an .raw.xz download: hash, decompress and hand out blocks as it arrives.

Used by `fetched` when a target's `needs` is "stream" (the AWS target). The compressed bytes are
hashed as they arrive and written into `xz -d -T0`, whose output a thread reads in 512 KiB
blocks: all-zero blocks are skipped; the others go to every open sink (`block(index, data)`),
to the sparse raw file when another target of the process reads one (written at the block's
offset, so the zero blocks stay holes: the image is fetched and decompressed once for all
targets), and the compressed bytes to a file when a target reads the download as fetched.
xz in a pipe rather than Python's lzma module: both were measured here (docs/benchmarks.md);
in-process lzma holds a Python thread for the whole decode, while xz decodes in its own process
beside the threads that read the socket, hash and send blocks.

Before the first byte, the raw size is read from the xz index at the end of the file with two
small HTTP range requests (uploader/intake/ranges.py): a snapshot's volume size must be known
when it starts. The index is not trusted beyond that: more decompressed bytes than it
declares stop the stream (a decompression bomb cannot get further than uploader.max_disk_mib),
and every block is checked against its index record. A server that ignores ranges gets the
classic path (download, then xz).

A multi-block file (what `xz -T0` writes) is cut into its blocks on the way in
(uploader/intake/xzblocks.py): a block known to decompress to zeros is not decompressed at
all, and xz decodes only the others; the reader puts the zero runs back in between. Most of an
image is zeros, so this is most of the decompression saved. A single-block file, several
concatenated streams or an index beyond the last 256 KiB (read then by `xz --list` on a sparse
file holding the two ranges) go to xz whole.

Memory stays bounded whatever the image size: one 1 MiB network chunk, two 1 MiB pipes, one
block being handed out, and the sinks' own bounded queues. When those are full the reader
stops reading, xz stalls, the write into its stdin waits, and so does the reading of the
socket (backpressure).

A body cut off mid-stream is resumed where it stopped (Range: bytes=N-); a server answering the
resumed request with the whole file has the first N bytes skipped. The sha256 covers exactly the
bytes decompressed, so a resumed download is verified like any other. Sinks never see the
verdict: on any failure intake calls `abort(why)` on each (the AWS sink deletes its pending
snapshot), and only a verified image reaches the handlers.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import queue
import subprocess
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests

from shared.config import Config
from shared.errors import BadInput, TransientError, VerificationFailed
from shared.http import IncompleteAnswer
from uploader.intake import fetch, ranges, xzblocks

log = logging.getLogger(__name__)

BLOCK_SIZE = 512 * 1024  # EBS direct API block; a multiple of every filesystem block
_ZERO_BLOCK = bytes(BLOCK_SIZE)
class _Blocks:
    """Decompressed bytes in, 512 KiB blocks out to the sinks and the raw file."""

    def __init__(self, sinks: Mapping[str, Any], raw_fd: int | None, limit: int) -> None:
        self.sinks = sinks
        self.raw_fd = raw_fd
        self.limit = limit  # bytes the xz index declares: never more
        self.offset = 0  # decompressed bytes handed out as whole blocks
        self.pending = bytearray()

    def whole(self, buf: bytearray) -> None:
        """One whole block read into a reused buffer (nothing pending): copied only if it is
        not all zeros (most of a disk image is)."""
        self._check(BLOCK_SIZE)
        if buf == _ZERO_BLOCK:
            for sink in self.sinks.values():
                sink.zero()
            self.offset += BLOCK_SIZE
        else:
            self._emit(bytes(buf), BLOCK_SIZE)

    def data(self, piece: bytes | memoryview) -> None:
        """Bytes that do not fill a block, or complete the pending one (never more)."""
        self._check(len(piece))
        self.pending += piece
        if len(self.pending) == BLOCK_SIZE:
            self._emit(bytes(self.pending), BLOCK_SIZE)
            self.pending.clear()

    def zeros(self, n: int) -> None:
        """n zero bytes known without decompressing them (a skipped xz block)."""
        self._check(n)
        if self.pending:
            fill = min(n, BLOCK_SIZE - len(self.pending))
            self.data(bytes(fill))
            n -= fill
        whole, rest = divmod(n, BLOCK_SIZE)
        for _ in range(whole):
            for sink in self.sinks.values():
                sink.zero()
        self.offset += whole * BLOCK_SIZE
        self.pending += bytes(rest)

    def _check(self, more: int) -> None:
        if self.offset + len(self.pending) + more > self.limit:
            raise VerificationFailed(
                f"decompresses past the {self.limit} bytes its xz index declares")

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


class _XzPipe:
    """`xz -d -T0` in a child process between the download and `_Blocks`.

    The download writes into xz's stdin (a blocking write: when xz is busy the download waits);
    a thread reads 512 KiB blocks from its stdout into a reused buffer and hands them on (when
    the sinks' pools are full it stops reading, xz stalls, and so does the download). It
    follows the segments it is given: "data" (n bytes from xz), "zeros" (n bytes that were
    never compressed data for xz), "rest" (xz's output to its end), "stop". xz in its
    own process decodes beside the Python threads that hash, read the socket and send blocks,
    instead of holding one of them: measured faster than Python's lzma module in the same
    pass on a busy 2-core machine (docs/benchmarks.md).

    After xz gave up on its input (corrupt data) the download goes on being hashed, so a
    corrupted transfer is reported as the sha256 mismatch it is; xz's own words come from
    `close`."""

    def __init__(self, out: _Blocks, *, cut: bool) -> None:
        self.out = out
        self.error: BaseException | None = None  # raised by the reader thread (bomb, a sink)
        self.gave_up = False  # xz closed its stdin early
        self.proc = subprocess.Popen(
            ["xz", "--decompress", "--format=xz", "--stdout", "--threads=0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):  # fewer, larger pipe transfers where allowed
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        self._segments: queue.SimpleQueue = queue.SimpleQueue()
        if not cut:
            self.segment("rest", None)
        self._reader = threading.Thread(target=self._read, name="xz-out", daemon=True)
        self._reader.start()

    def segment(self, kind: str, n: int) -> None:
        """What the next n bytes of the disk are: "data" (decoded by xz) or "zeros"."""
        self._segments.put((kind, n))

    def _read(self) -> None:
        fd = self.proc.stdout.fileno()
        buf = bytearray(BLOCK_SIZE)
        view = memoryview(buf)
        try:
            while True:
                kind, left = self._segments.get()
                if kind == "stop":
                    return
                if kind == "zeros":
                    self.out.zeros(left)
                    continue
                while left is None or left > 0:  # "data": left bytes; "rest": up to xz's end
                    want = BLOCK_SIZE - len(self.out.pending)  # reads stay block-aligned
                    if left is not None:
                        want = min(want, left)
                    got = 0
                    while got < want and (n := os.readv(fd, [view[got:want]])):
                        got += n
                    if got == BLOCK_SIZE:
                        self.out.whole(buf)
                    elif got:
                        self.out.data(bytes(view[:got]))
                    if got < want:  # xz ended (early if it refused its input: see close)
                        return
                    if left is not None:
                        left -= got
        except BaseException as exc:  # raised in the download's thread by feed/close
            self.error = exc
            self.proc.kill()  # its stdin breaks: the download stops feeding it

    def feed(self, chunk: bytes | memoryview) -> None:
        if self.error is not None:
            raise self.error
        if self.gave_up:
            return
        try:
            self.proc.stdin.write(chunk)
        except BrokenPipeError:
            self.gave_up = True

    def close(self, timeout: float) -> str | None:
        """Wait for xz and the last block; None if xz decoded it all, else what xz said."""
        self.segment("rest", None)  # anything past the segments is still checked
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        self._reader.join()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise TransientError(f"xz took longer than {timeout} s") from exc
        if self.error is not None:
            raise self.error
        err = self.proc.stderr.read().decode(errors="replace").strip()
        if self.proc.returncode != 0:
            return f"not valid xz: {err or f'xz exited {self.proc.returncode}'}"
        return None

    def kill(self) -> None:
        """Stop xz and the reader at once (a failed download); idempotent."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.segment("stop", 0)  # a reader waiting for the next segment
        self._reader.join()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                pipe.close()


def stream_xz(http: requests.Session, url: str, *, config: Config, size: int | None,
              sha256: str | None, disk_size: int, sinks: Mapping[str, Any],
              raw_path: Path | None, file_path: Path | None,
              layout: xzblocks.Layout | None = None) -> fetch.Download:
    """Download, verify and decompress url in one pass (see the module docstring).

    Returns the measured size and sha256 of the download, only if it matched the source and
    decompressed to exactly `disk_size` bytes; raises VerificationFailed, BadInput or
    TransientError otherwise. The caller aborts the sinks on any exception. With the file's
    block `layout`, blocks known to be zeros are not decompressed (uploader/intake/xzblocks.py).
    """
    fetch.check_allowed(url, fetch.allowed_roots(config))
    expected_sha = sha256.lower() if sha256 else None
    digest = hashlib.sha256()
    got = 0
    with _open_or_none(raw_path) as raw_fd, _open_or_none(file_path) as file_fd:
        blocks = _Blocks(sinks, raw_fd, disk_size)
        xz = _XzPipe(blocks, cut=layout is not None)
        cutter = xzblocks.Cutter(layout, xz.feed, xz.segment) if layout else None
        feed = cutter.feed if cutter else xz.feed

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
                    first, _ = ranges.content_range(url, resp)
                    if first != got:
                        raise VerificationFailed(f"{url}: resumed at byte {first}, not {got}")
                elif resumed:
                    skip = got  # the whole file again: drop what was already used
                else:
                    _check_announced(url, resp, size)
                for chunk in ranges.body_chunks(url, resp, got):
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
                    feed(chunk)
            finally:
                resp.close()
            if size is not None and got != size:
                raise IncompleteAnswer(f"{url}: got {got} bytes, the source records {size}")

        cut_wrong: VerificationFailed | None = None
        try:
            fetch.until_complete(url, config, attempt)
            if cutter is not None:
                try:
                    xz.feed(cutter.finish())  # the index of the blocks xz got
                except VerificationFailed as exc:  # after the sha256 verdict: that says more
                    cut_wrong = exc
            # the last block handed out (or the reader's error) before any verdict
            refused = xz.close(config.uploader.decompress_timeout)
        finally:
            xz.kill()
        actual = digest.hexdigest()
        if expected_sha is not None and actual != expected_sha:
            raise VerificationFailed(
                f"{url}: sha256 mismatch: got {actual}, the source records {expected_sha}")
        if cut_wrong is not None:
            raise VerificationFailed(f"{url}: {cut_wrong}")
        if cutter is not None:
            log.info("%s: %d of %d xz blocks known to be zeros, not decompressed (%d trial "
                     "decodes)", url, cutter.skipped, len(cutter.layout.records),
                     cutter.zeros.decoded)
        if refused is not None:
            raise VerificationFailed(f"{url}: {refused}")
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
