"""Cut a multi-block .xz download into its blocks and skip the ones that decompress to zeros.

A disk image is mostly zeros, and xz compresses each block of a multi-threaded (`xz -T`) file on
its own, from a fresh state: every all-zero block of one size comes out as the same few hundred
bytes. Decoding those zeros is nearly all the work of decompressing an image (measured in
docs/benchmarks.md), so the streaming pass does not do it twice: the first block of a given
content whose ratio makes it a candidate is decoded here, in-process, and if it decodes to
zeros every later block with the same bytes and size is known to be zeros without decoding.
Identical input gives identical output (the decoder is a pure function), and the first decode
is checked like any other (the block's own check, its sizes against its index record), so this
is exact, not a guess.

`xz -d` gets a stream of its own: the download's stream header, the blocks that are not zeros
as they arrive, and at the end an index listing only those blocks. Its output is those blocks'
bytes back to back; the segments (`("data", n)` / `("zeros", n)`) tell the reader where the
skipped runs go. Block boundaries come from the download's own index, read before the body
with the size (uploader/intake/ranges.py); at the end the downloaded index and footer must be
the very bytes that were parsed, so the cut is the one of this file.

python-xz (`xz.common`) parses and writes the container's index and footer; decoding stays with
liblzma (the xz tool and Python's lzma module).
"""

from __future__ import annotations

import dataclasses
import hashlib
import lzma
from collections.abc import Callable

import cachetools
from xz.common import (
    XZError,
    create_xz_header,
    create_xz_index_footer,
    parse_xz_footer,
    parse_xz_header,
    parse_xz_index,
    round_up,
)

from shared.errors import VerificationFailed

HEADER_BYTES = 12  # stream header and stream footer are 12 bytes each
# a block is worth a trial decode when it is at most this fraction of its output: an all-zero
# block compresses about 5,600:1 with LZMA2, a block of real data rarely better than 20:1
CANDIDATE_RATIO = 512
CANDIDATE_MAX_BYTES = 1 << 20  # never hold more than this of one block in memory
PIECE = 512 * 1024  # a trial decode's output is looked at in pieces of this size


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the blocks of a single-stream .xz file are, from its index."""

    check: int  # the stream's integrity check type (xz's numbering)
    records: tuple[tuple[int, int], ...]  # (unpadded size, uncompressed size) per block
    index_and_footer: bytes  # the file's last bytes, as parsed

    @property
    def disk_size(self) -> int:
        return sum(uncompressed for _, uncompressed in self.records)


def parse_layout(head: bytes, tail: bytes, total: int) -> Layout | None:
    """The block layout of a `total`-byte .xz file from its first and last bytes, or None when
    it is not one stream whose index lies within `tail` (concatenated streams, stream padding,
    a single block: nothing to skip, the whole file goes to xz)."""
    try:
        check = parse_xz_header(head[:HEADER_BYTES])
        footer_check, index_size = parse_xz_footer(tail[-HEADER_BYTES:])
        if footer_check != check or index_size + HEADER_BYTES > len(tail):
            return None
        ending = tail[-(index_size + HEADER_BYTES):]
        records = tuple(parse_xz_index(ending[:index_size]))
    except XZError:
        return None
    body = sum(round_up(unpadded) for unpadded, _ in records)
    if len(records) < 2 or HEADER_BYTES + body + len(ending) != total:
        return None
    return Layout(check, records, ending)


class ZeroBlocks:
    """Which blocks decode to zeros, learnt by decoding the first of each content."""

    def __init__(self, check: int, known: int = 64) -> None:
        self.check = check
        self.decoded = 0  # trial decodes made (the rest were answered from memory)
        self._verdicts: cachetools.LRUCache = cachetools.LRUCache(known)

    @staticmethod
    def candidate(unpadded: int, uncompressed: int) -> bool:
        return (unpadded * CANDIDATE_RATIO <= uncompressed
                and round_up(unpadded) <= CANDIDATE_MAX_BYTES)

    def all_zeros(self, block: bytes, unpadded: int, uncompressed: int) -> bool:
        """Whether `block` (its padded bytes) is a valid block of `uncompressed` zero bytes."""
        key = hashlib.sha256(block + uncompressed.to_bytes(8, "little")).digest()
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._decodes_to_zeros(block, unpadded, uncompressed)
            self._verdicts[key] = verdict
        return verdict

    def _decodes_to_zeros(self, block: bytes, unpadded: int, uncompressed: int) -> bool:
        self.decoded += 1
        # the block alone as a whole .xz stream: liblzma then checks its check field and its
        # sizes against the one-record index
        stream = (create_xz_header(self.check) + block
                  + create_xz_index_footer(self.check, [(unpadded, uncompressed)]))
        decoder = lzma.LZMADecompressor(lzma.FORMAT_XZ)
        zero = bytes(PIECE)
        out, made = b"", 0
        try:
            out = decoder.decompress(stream, max_length=PIECE)
            while True:
                if out != zero[:len(out)]:
                    return False
                made += len(out)
                if decoder.eof or (decoder.needs_input and not out):
                    break
                out = decoder.decompress(b"", max_length=PIECE)
        except lzma.LZMAError:
            return False  # xz gets it as any block, and says what is wrong with it
        return decoder.eof and made == uncompressed


class Cutter:
    """Download bytes in (in order, any chunking); out: what xz decodes, and the segments.

    `feed_xz(data)` writes to xz's stdin; `segment(kind, n)` tells the reader what the next n
    bytes of the disk are: "data" (read them from xz) or "zeros" (skipped here).
    """

    def __init__(self, layout: Layout, feed_xz: Callable[[bytes | memoryview], None],
                 segment: Callable[[str, int], None]) -> None:
        self.layout = layout
        self.zeros = ZeroBlocks(layout.check)
        self._feed_xz = feed_xz
        self._segment = segment
        self._header = bytearray()
        self._block = 0  # index of the block being cut
        self._left = 0  # its bytes still to come
        self._held: bytearray | None = None  # a candidate block, kept until it is whole
        self._ending = bytearray()
        self._fed: list[tuple[int, int]] = []  # index records of the blocks xz got
        self.skipped = 0  # blocks known to be zeros

    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            if len(self._header) < HEADER_BYTES:
                take = view[:HEADER_BYTES - len(self._header)]
                self._header += take
                self._feed_xz(take)
                view = view[len(take):]
                continue
            if self._left == 0 and not self._start_block():
                self._ending += view
                if len(self._ending) > len(self.layout.index_and_footer):
                    raise VerificationFailed("xz data past the index its footer points to")
                return
            take = view[:self._left]
            self._left -= len(take)
            view = view[len(take):]
            if self._held is None:
                self._feed_xz(take)
            else:
                self._held += take
                if self._left == 0:
                    self._decide()
            if self._left == 0:
                self._block += 1

    def finish(self) -> bytes:
        """Check that the download ended with the index that was parsed; the index and footer
        that end xz's stream (those of the blocks it got)."""
        if self._block < len(self.layout.records) or \
                bytes(self._ending) != self.layout.index_and_footer:
            raise VerificationFailed("the xz index differs from the one read before the body")
        return create_xz_index_footer(self.layout.check, self._fed)

    def _start_block(self) -> bool:
        if self._block == len(self.layout.records):
            return False
        unpadded, uncompressed = self.layout.records[self._block]
        self._left = round_up(unpadded)
        if ZeroBlocks.candidate(unpadded, uncompressed):
            self._held = bytearray()
        else:
            self._pass_on(unpadded, uncompressed)
        return True

    def _decide(self) -> None:
        unpadded, uncompressed = self.layout.records[self._block]
        block, self._held = bytes(self._held), None
        if self.zeros.all_zeros(block, unpadded, uncompressed):
            self.skipped += 1
            self._segment("zeros", uncompressed)
        else:
            self._pass_on(unpadded, uncompressed)
            self._feed_xz(block)

    def _pass_on(self, unpadded: int, uncompressed: int) -> None:
        self._fed.append((unpadded, uncompressed))
        self._segment("data", uncompressed)
