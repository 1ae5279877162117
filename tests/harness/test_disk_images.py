"""Self-tests of the disk image helpers: real tables, real ext4, really sparse, xz round trip."""

from __future__ import annotations

import hashlib
import lzma
import shutil
import subprocess

import pytest

from shared.files import sha256_file
from standins.disk_images import (
    GPT_LINUX_FS,
    MiB,
    data_extents,
    extract_partition,
    read_partition_table,
)


def _tool(name):
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{name} is not installed (see Makefile system packages)")
    return path


def test_gpt_table_is_valid(raw_image):
    table, parts = read_partition_table(raw_image.path)
    assert table == raw_image.table == "gpt"
    root = parts[-1]
    assert root.type == str(GPT_LINUX_FS) and root.start == raw_image.fs_offset
    assert root.start % MiB == 0 and root.start + root.size <= raw_image.size - 33 * 512
    out = subprocess.run([_tool("blkid"), "-p", "-o", "export", str(raw_image.path)],
                         capture_output=True, text=True, check=True).stdout
    assert "PTTYPE=gpt" in out
    desc = subprocess.run([_tool("file"), "-b", str(raw_image.path)], capture_output=True,
                          text=True, check=True).stdout
    assert "ID=0xee" in desc  # protective MBR


def test_ext4_fs_with_files(raw_image, tmp_path):
    out = subprocess.run([_tool("blkid"), "-p", "-o", "export", "-O", str(raw_image.fs_offset),
                          str(raw_image.path)], capture_output=True, text=True, check=True).stdout
    assert "TYPE=ext4" in out and "LABEL=fedimg-root" in out
    root = next(p for p in raw_image.partitions if p.start == raw_image.fs_offset)
    fs = extract_partition(raw_image.path, root, tmp_path / "root.ext4")
    subprocess.run([_tool("e2fsck"), "-fn", str(fs)], check=True, capture_output=True)
    for name, digest in raw_image.files.items():
        data = subprocess.run([_tool("debugfs"), "-R", f"cat {name}", str(fs)],
                              capture_output=True, check=True).stdout
        assert hashlib.sha256(data).hexdigest() == digest, name
    assert sum(1 for _ in raw_image.files) >= 4


def test_image_is_sparse(raw_image):
    assert raw_image.allocated < raw_image.size // 4
    extents = data_extents(raw_image.path)
    assert extents[0][0] == 0  # MBR + GPT header
    assert len(extents) > 3
    data = sum(length for _, length in extents)
    assert data < raw_image.size // 4
    # every byte outside the extents reads as zero
    with open(raw_image.path, "rb") as f:
        pos = 0
        for off, length in extents + [(raw_image.size, 0)]:
            f.seek(pos)
            assert f.read(min(off - pos, 4 * MiB)).count(0) == min(off - pos, 4 * MiB)
            pos = off + length


def test_data_extents_of_a_handmade_file(tmp_path):
    p = tmp_path / "holes"
    with open(p, "wb") as f:
        f.truncate(8 * MiB)
        f.seek(MiB)
        f.write(b"x" * 4096)
        f.seek(6 * MiB)
        f.write(b"y" * 8192)
    assert data_extents(p) == [(MiB, 4096), (6 * MiB, 8192)]
    (tmp_path / "empty").write_bytes(b"")
    assert data_extents(tmp_path / "empty") == []


def test_deterministic_and_mbr_variant(disk_image_factory):
    a = disk_image_factory("a.raw", size=16 * MiB, data_mib=1)
    b = disk_image_factory("b.raw", size=16 * MiB, data_mib=1)
    c = disk_image_factory("c.raw", size=16 * MiB, data_mib=1, seed=1)
    assert a.sha256 == b.sha256 != c.sha256
    m = disk_image_factory("m.raw", size=16 * MiB, data_mib=1, table="mbr")
    table, parts = read_partition_table(m.path)
    assert table == "mbr" and parts[0].type == "0x83" and parts[0].start == MiB
    assert m.fs_offset == MiB


def test_broken_gpt_is_detected(disk_image_factory):
    img = disk_image_factory(size=16 * MiB, data_mib=0.5)
    with open(img.path, "r+b") as f:
        f.seek(1024 + 40)  # a byte inside the first partition entry
        f.write(b"\x01")
    with pytest.raises(ValueError, match="CRC"):
        read_partition_table(img.path)


def test_xz_round_trip(raw_xz_image, tmp_path):
    raw = raw_xz_image.raw
    assert raw_xz_image.path.name.endswith(".raw.xz")
    assert raw_xz_image.sha256 == sha256_file(raw_xz_image.path)
    # realistic ratio: the random part does not compress, zeros do
    assert raw.allocated // 4 < raw_xz_image.size < raw.allocated
    with lzma.open(raw_xz_image.path) as f:
        h = hashlib.sha256()
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    assert h.hexdigest() == raw.sha256
    out = subprocess.run([_tool("xz"), "-dc", str(raw_xz_image.path)], capture_output=True,
                         check=True).stdout
    assert len(out) == raw.size and hashlib.sha256(out).hexdigest() == raw.sha256
