"""Block selection and checksums on files with holes, zero runs and a short last block.

Expected values come from a naive reader (the whole file, chunk by chunk, no seeking), never
from the module under test.
"""

import base64
import hashlib
import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from standins.disk_images import data_extents
from uploader.targets.aws import blocks

BS = blocks.BLOCK_SIZE


def naive_blocks(path) -> dict[int, bytes]:
    """{index: padded block} of every block with a non-zero byte, by reading everything."""
    out = {}
    with open(path, "rb") as f:
        index = 0
        while chunk := f.read(BS):
            chunk = chunk.ljust(BS, b"\0")
            if chunk.count(0) != len(chunk):
                out[index] = chunk
            index += 1
    return out


def naive_linear(path) -> str:
    digests = b"".join(hashlib.sha256(b).digest() for _, b in sorted(naive_blocks(path).items()))
    return base64.b64encode(hashlib.sha256(digests).digest()).decode()


def selected(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return dict(blocks.data_blocks(fd, os.fstat(fd).st_size))
    finally:
        os.close(fd)


def write_layout(path, size, writes):
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, data in writes:
            f.seek(offset)
            f.write(data)


def test_holes_zero_runs_and_short_last_block(tmp_path):
    path = tmp_path / "disk.raw"
    size = 9 * BS + 1000  # short last block
    write_layout(path, size, [
        (100, b"MBR"),                              # block 0
        (3 * BS - 10, b"x" * 20),                   # straddles blocks 2 and 3
        (5 * BS, bytes(BS)),                        # written zeros: allocated, still skipped
        (6 * BS + 7, os.urandom(BS)),               # blocks 6 and 7
        (9 * BS + 999, b"\x01"),                    # last byte of the short last block
    ])
    got = selected(path)
    assert sorted(got) == [0, 2, 3, 6, 7, 9]
    assert got == naive_blocks(path)
    assert all(len(b) == BS for b in got.values())
    assert got[9][1000:] == bytes(BS - 1000)  # padding
    digests = {i: blocks.block_digest(b) for i, b in got.items()}
    assert blocks.linear_checksum(digests) == naive_linear(path)
    # the zero-written block is allocated (SEEK_DATA sees it) but must not be sent
    fd = os.open(path, os.O_RDONLY)
    try:
        candidates = list(blocks.candidate_blocks(blocks.data_ranges(fd, size)))
    finally:
        os.close(fd)
    assert 5 in candidates and 5 not in got


def test_ranges_match_seek_data_of_a_real_disk_image(raw_image):
    fd = os.open(raw_image.path, os.O_RDONLY)
    try:
        ranges = list(blocks.data_ranges(fd, raw_image.size))
    finally:
        os.close(fd)
    assert ranges == [(start, start + length) for start, length in data_extents(raw_image.path)]
    got = selected(raw_image.path)
    assert got == naive_blocks(raw_image.path)
    assert 0 < len(got) * BS < raw_image.size / 4  # a mostly empty 64 MiB disk


def test_all_hole_file_has_no_blocks_and_checksum_of_nothing(tmp_path):
    path = tmp_path / "empty.raw"
    write_layout(path, 4 * BS, [])
    assert selected(path) == {}
    empty = base64.b64encode(hashlib.sha256(b"").digest()).decode()
    assert blocks.linear_checksum({}) == empty


def test_linear_checksum_orders_by_block_index_not_insertion():
    d = {7: b"\x07" * 32, 1: b"\x01" * 32, 3: b"\x03" * 32}
    expected = base64.b64encode(hashlib.sha256(b"\x01" * 32 + b"\x03" * 32 + b"\x07" * 32)
                                .digest()).decode()
    assert blocks.linear_checksum(d) == expected


def test_candidate_blocks_once_each_and_ascending():
    ranges = [(0, 10), (20, 30), (BS - 1, BS + 1), (BS + 5, 2 * BS), (5 * BS, 5 * BS)]
    assert list(blocks.candidate_blocks(ranges)) == [0, 1]


def test_volume_size_rounds_up_to_whole_gib():
    gib = 1024**3
    assert blocks.volume_size_gib(gib) == 1
    assert blocks.volume_size_gib(gib + 1) == 2
    assert blocks.volume_size_gib(5 * gib - 512) == 5
    assert blocks.volume_size_gib(1) == 1


@settings(max_examples=40, deadline=None)
@given(
    nblocks=st.integers(1, 12),
    tail=st.integers(0, BS - 1),
    writes=st.lists(
        st.tuples(st.integers(0, 12 * BS), st.integers(1, 3000),
                  st.sampled_from(["rand", "zero"])), max_size=8),
)
def test_selection_matches_naive_reader_on_random_sparse_files(nblocks, tail, writes):
    size = nblocks * BS + tail
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "disk.raw")
        layout = []
        for offset, length, kind in writes:
            offset = min(offset, size - 1)
            length = min(length, size - offset)
            layout.append((offset, os.urandom(length) if kind == "rand" else bytes(length)))
        write_layout(path, size, layout)
        got = selected(path)
        assert got == naive_blocks(path)
        digests = {i: blocks.block_digest(b) for i, b in got.items()}
        assert blocks.linear_checksum(digests) == naive_linear(path)
