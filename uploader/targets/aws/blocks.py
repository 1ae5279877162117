"""Which 512 KiB blocks of a sparse raw disk carry data, and the checksums EBS wants for them.

The EBS direct API takes exactly BLOCK_SIZE bytes per block. A fresh snapshot reads as zeros
wherever nothing was written, so holes (found with SEEK_DATA/SEEK_HOLE, no reading) and blocks
that happen to be all zeros are never sent. The last block of an image whose size is not a
multiple of BLOCK_SIZE is padded with zeros.

Checksums: each block is sent with base64(SHA-256(block)); complete_snapshot takes the LINEAR
aggregate, base64(SHA-256(concatenation of the raw 32-byte digests of the blocks written, in
block-index order)).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
from collections.abc import Iterable, Iterator

BLOCK_SIZE = 512 * 1024
GIB = 1024**3
_ZERO_BLOCK = bytes(BLOCK_SIZE)


def volume_size_gib(raw_size: int) -> int:
    """Smallest whole number of GiB that holds the image (EBS volumes are sized in GiB)."""
    return max(1, -(-raw_size // GIB))


def data_ranges(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) byte ranges that may hold data, from SEEK_DATA/SEEK_HOLE.

    A filesystem without hole support reports the whole file as data, which is still correct
    (the zero check below then does the skipping, at the cost of reading).
    """
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:  # no data after offset: the rest is a hole
                return
            raise
        if start >= size:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        offset = end


def candidate_blocks(ranges: Iterable[tuple[int, int]]) -> Iterator[int]:
    """Block indices touched by the byte ranges, ascending, each once."""
    last = -1
    for start, end in ranges:
        if end <= start:
            continue
        first = max(start // BLOCK_SIZE, last + 1)
        stop = (end - 1) // BLOCK_SIZE
        yield from range(first, stop + 1)
        last = max(last, stop)


def read_block(fd: int, index: int, size: int) -> bytes:
    """The block at `index`, zero-padded to BLOCK_SIZE if the file ends inside it."""
    offset = index * BLOCK_SIZE
    length = min(BLOCK_SIZE, size - offset)
    chunks = []
    got = 0
    while got < length:
        chunk = os.pread(fd, length - got, offset + got)
        if not chunk:  # file shrank under us: treat the rest as zeros, as a fresh volume would
            break
        chunks.append(chunk)
        got += len(chunk)
    data = b"".join(chunks)
    if len(data) < BLOCK_SIZE:
        data += bytes(BLOCK_SIZE - len(data))
    return data


def is_zero(block: bytes) -> bool:
    return block == _ZERO_BLOCK


def data_blocks(fd: int, size: int) -> Iterator[tuple[int, bytes]]:
    """(index, BLOCK_SIZE bytes) for every block that holds a non-zero byte, ascending."""
    for index in candidate_blocks(data_ranges(fd, size)):
        block = read_block(fd, index, size)
        if not is_zero(block):
            yield index, block


def block_digest(block: bytes) -> bytes:
    return hashlib.sha256(block).digest()


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def linear_checksum(digests_by_index: dict[int, bytes]) -> str:
    """EBS LINEAR aggregate: SHA-256 over the raw block digests in block-index order, base64."""
    h = hashlib.sha256()
    for index in sorted(digests_by_index):
        h.update(digests_by_index[index])
    return b64(h.digest())
