"""Cutting a multi-block .xz into blocks and skipping the all-zero ones, against real xz files.

The oracle is liblzma itself: `xz --list` for the layout, and for the cut, decompressing what
the cutter hands to xz and putting the skipped zero runs back must give the raw disk.
"""

from __future__ import annotations

import lzma
import os
import pathlib
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xz.common import parse_xz_footer, parse_xz_index

from shared.errors import VerificationFailed
from standins.disk_images import MiB, compress_raw_xz
from uploader.intake.xzblocks import Cutter, ZeroBlocks, parse_layout

TAIL = 256 * 1024


def ends(path: pathlib.Path) -> tuple[bytes, bytes, int]:
    data = path.read_bytes()
    return data[:4096], data[-TAIL:], len(data)


def listed_blocks(path: pathlib.Path) -> list[int]:
    """Uncompressed size of every block, as `xz --robot --list -v` reads them."""
    out = subprocess.run(["xz", "--robot", "--list", "-v", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return [int(line.split("\t")[7]) for line in out.splitlines() if line.startswith("block")]


def cut(path: pathlib.Path, sizes: list[int] | None = None) -> tuple[bytes, Cutter]:
    """The disk as the streaming pass rebuilds it from the cutter's output, and the cutter."""
    layout = parse_layout(*ends(path))
    assert layout is not None
    fed, segments = bytearray(), []
    cutter = Cutter(layout, fed.extend, lambda kind, n: segments.append((kind, n)))
    data = path.read_bytes()
    pos, turn = 0, 0
    while pos < len(data):  # chunks of the given sizes, in turn (the network's chunking)
        step = sizes[turn % len(sizes)] if sizes else 1 << 20
        cutter.feed(data[pos:pos + step])
        pos, turn = pos + step, turn + 1
    fed += cutter.finish()
    decoded = memoryview(lzma.decompress(bytes(fed), format=lzma.FORMAT_XZ))
    disk = bytearray()
    for kind, n in segments:
        if kind == "zeros":
            disk += bytes(n)
        else:
            disk += decoded[:n]
            decoded = decoded[n:]
    assert not decoded  # xz made exactly what the data segments announced
    return bytes(disk), cutter


def test_the_layout_is_the_one_xz_lists(multiblock_xz_image):
    layout = parse_layout(*ends(multiblock_xz_image.path))
    assert layout is not None
    assert [u for _, u in layout.records] == listed_blocks(multiblock_xz_image.path)
    assert layout.disk_size == multiblock_xz_image.raw.size


def test_no_layout_where_there_is_nothing_to_cut(raw_xz_image, multiblock_xz_image, tmp_path):
    assert parse_layout(*ends(raw_xz_image.path)) is None  # one block: xz gets it whole
    two = tmp_path / "two-streams.xz"  # xz reads concatenated streams as one file
    two.write_bytes(multiblock_xz_image.path.read_bytes() * 2)
    assert parse_layout(*ends(two)) is None
    padded = tmp_path / "padded.xz"  # stream padding after the footer
    padded.write_bytes(multiblock_xz_image.path.read_bytes() + bytes(4))
    assert parse_layout(*ends(padded)) is None
    head, tail, total = ends(multiblock_xz_image.path)
    assert parse_layout(head, tail[-20:], total) is None  # the index is not in the tail read
    assert parse_layout(b"not xz at all", tail, total) is None


def test_every_all_zero_block_but_the_first_is_skipped_undecoded(multiblock_xz_image):
    disk, cutter = cut(multiblock_xz_image.path)
    assert disk == multiblock_xz_image.raw.path.read_bytes()
    raw = multiblock_xz_image.raw.path.read_bytes()
    zero_blocks = sum(raw[i:i + MiB] == bytes(MiB) for i in range(0, len(raw), MiB))
    assert zero_blocks > 10
    assert cutter.skipped == zero_blocks
    # trial decodes: the zero content once, and each candidate that turned out to hold data
    candidates = sum(ZeroBlocks.candidate(*record) for record in cutter.layout.records)
    assert cutter.zeros.decoded == 1 + candidates - zero_blocks


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.integers(1, 3 * MiB), min_size=1, max_size=6))
def test_any_chunking_of_the_download_rebuilds_the_same_disk(multiblock_xz_image, sizes):
    disk, _ = cut(multiblock_xz_image.path, sizes)
    assert disk == multiblock_xz_image.raw.path.read_bytes()


@pytest.mark.parametrize("block_size", [300 * 1024, 3 * MiB + 4096])
def test_blocks_of_any_size_rebuild_the_same_disk(raw_image, tmp_path, block_size):
    xz = compress_raw_xz(raw_image.path, tmp_path / "odd.xz", preset=0, threads=2,
                         block_size=block_size)
    disk, cutter = cut(xz, [65536, 1 << 20])
    assert disk == raw_image.path.read_bytes()
    assert cutter.skipped > 0


def one_block(content: bytes) -> tuple[bytes, int, int]:
    """(padded bytes, unpadded size, uncompressed size) of `content` compressed as one block:
    between the 12-byte stream header and the index, whose one record gives the sizes."""
    data = lzma.compress(content, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64)
    _, index_size = parse_xz_footer(data[-12:])
    ((unpadded, uncompressed),) = parse_xz_index(data[-12 - index_size:-12])
    return data[12:-12 - index_size], unpadded, uncompressed


def test_only_a_valid_block_of_zeros_is_taken_for_zeros():
    block, unpadded, uncompressed = one_block(bytes(MiB))
    check = lzma.CHECK_CRC64
    assert ZeroBlocks.candidate(unpadded, uncompressed)
    assert ZeroBlocks(check).all_zeros(block, unpadded, uncompressed)
    # the same size claimed for fewer bytes: the decoder's size check refuses it
    assert not ZeroBlocks(check).all_zeros(block, unpadded, uncompressed + 512 * 1024)
    broken = bytearray(block)
    broken[-1] ^= 0xFF  # its CRC64
    assert not ZeroBlocks(check).all_zeros(bytes(broken), unpadded, uncompressed)
    ones = one_block(b"\x01" * MiB)  # compresses as well as zeros
    assert ZeroBlocks.candidate(*ones[1:]) and not ZeroBlocks(check).all_zeros(*ones)
    data = one_block(os.urandom(MiB))
    assert not ZeroBlocks.candidate(*data[1:])  # data is never decoded twice


def test_a_verdict_is_reused_for_the_same_bytes_only():
    block, unpadded, uncompressed = one_block(bytes(MiB))
    known = ZeroBlocks(lzma.CHECK_CRC64)
    assert all(known.all_zeros(block, unpadded, uncompressed) for _ in range(5))
    assert known.decoded == 1
    broken = bytearray(block)
    broken[-1] ^= 0xFF
    assert not known.all_zeros(bytes(broken), unpadded, uncompressed)
    assert known.decoded == 2


def test_a_download_whose_index_is_not_the_one_read_first_is_refused(multiblock_xz_image):
    head, tail, total = ends(multiblock_xz_image.path)
    layout = parse_layout(head, tail, total)
    cutter = Cutter(layout, lambda data: None, lambda kind, n: None)
    data = bytearray(multiblock_xz_image.path.read_bytes())
    data[-20] ^= 0xFF  # inside the index the download ends with
    cutter.feed(bytes(data))
    with pytest.raises(VerificationFailed, match="index differs"):
        cutter.finish()
    cutter = Cutter(layout, lambda data: None, lambda kind, n: None)
    with pytest.raises(VerificationFailed, match="past the index"):
        cutter.feed(bytes(multiblock_xz_image.path.read_bytes()) + b"more")
