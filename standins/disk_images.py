"""Small but real disk images: partition table, ext4 filesystem, holes, xz.

Why: the uploader streams raw images into EBS snapshots (skipping zero blocks), converts them to
qcow2 and packs sparse tarballs. Those code paths behave differently on real images than on
random bytes: a real image has a partition table, a filesystem with metadata spread over the
disk, long zero runs and holes. These helpers build such images in well under a second, with
deterministic content (same bytes, same sha256 on every run) so expectations can be pinned.

- The partition table (GPT with protective MBR, or plain MBR) is written here with ``struct``;
  no ``sfdisk`` needed. ``read_partition_table`` parses it back (and checks GPT CRCs).
- The ext4 filesystem is made by ``mkfs.ext4 -d`` (e2fsprogs) directly inside the partition with
  ``-E offset=``, so untouched space stays a hole. Content is seeded random data (incompressible),
  seeded "text" (compressible) and a file with zero runs, so xz/qcow2 sizes are realistic.
- ``compress_raw_xz`` uses the real ``xz`` like Koji's raw.xz outputs.
- ``data_extents`` lists a file's data ranges with SEEK_DATA/SEEK_HOLE to assert sparseness.

System tools: ``mkfs.ext4`` and ``debugfs`` (e2fsprogs) and ``xz`` (xz-utils); ``blkid``
(util-linux) and ``file`` are used only by the tests of this module.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import os
import pathlib
import random
import shutil
import struct
import subprocess
import tempfile
import uuid
import zlib
from typing import Any

from shared.files import sha256_file

MiB = 1 << 20
SECTOR = 512

# GPT partition type GUIDs
GPT_BIOS_BOOT = uuid.UUID("21686148-6449-6e6f-744e-656564454649")
GPT_LINUX_FS = uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4")
MBR_LINUX = 0x83

# Fixed identities so the same arguments always give the same bytes.
DISK_GUID = uuid.UUID("5b1e6d1c-0f3a-4c55-9d7e-466564696d67")
FS_UUID = uuid.UUID("8f4c2b9e-3d1a-4e6b-a7c5-0123456789ab")
FS_LABEL = "fedimg-root"
FAKE_TIME = 1764028800  # 2025-11-25T00:00:00Z

_WORDS = ("fedora", "cloud", "image", "kernel", "systemd", "dracut", "grub2", "rpm", "dnf",
    "selinux", "policy", "libc", "openssh", "cloud-init", "NetworkManager", "firmware", "locale",
    "zoneinfo", "python3", "bash", "coreutils", "util-linux", "e2fsprogs", "xfsprogs",
    "btrfs-progs", "chrony", "audit", "sudo", "glibc-langpack")


@dataclasses.dataclass(frozen=True)
class Partition:
    """One partition table entry, in bytes."""

    number: int
    start: int
    size: int
    type: str  # GPT type GUID (lower case) or MBR type as "0x83"
    name: str = ""


@dataclasses.dataclass(frozen=True)
class DiskImage:
    """A raw disk image the harness made, with what tests want to assert against."""

    path: pathlib.Path
    size: int  # apparent size in bytes
    sha256: str
    allocated: int  # bytes actually allocated on disk (st_blocks * 512)
    table: str  # "gpt" or "mbr"
    partitions: tuple[Partition, ...]
    fs_offset: int  # byte offset of the ext4 filesystem
    files: dict[str, str]  # path inside the fs -> sha256 of its content


@dataclasses.dataclass(frozen=True)
class XzImage:
    """A ``.raw.xz`` made from a DiskImage (what Koji ships for cloud images)."""

    path: pathlib.Path
    size: int
    sha256: str
    raw: DiskImage


def allocated_bytes(path: os.PathLike | str) -> int:
    """Bytes the filesystem really allocated for ``path`` (less than the size if sparse)."""
    return os.stat(path).st_blocks * 512


def data_extents(path: os.PathLike | str) -> list[tuple[int, int]]:
    """(offset, length) of each data range of ``path``, found with SEEK_DATA/SEEK_HOLE.

    Why: tests assert that writers keep holes (sparse downloads, tar -S, dd conv=sparse)
    instead of materialising zeros. Ranges are as the filesystem reports them (block-aligned).
    """
    extents = []
    fd = os.open(path, os.O_RDONLY)
    try:
        end = os.fstat(fd).st_size
        pos = 0
        while pos < end:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no more data after pos
                    break
                raise
            stop = os.lseek(fd, start, os.SEEK_HOLE)
            extents.append((start, stop - start))
            pos = stop
    finally:
        os.close(fd)
    return extents


# --- partition tables -------------------------------------------------------------------------


def _mbr_entry(boot: int, ptype: int, lba: int, count: int) -> bytes:
    # CHS fields are meaningless for big/modern disks; use the "LBA only" conventional values.
    return struct.pack("<B3sB3sII", boot, b"\x00\x02\x00", ptype, b"\xff\xff\xff", lba,
                       min(count, 0xFFFFFFFF))


def _write_mbr(f: Any, entries: list[bytes], disk_sig: int = 0) -> None:
    sector = bytearray(SECTOR)
    struct.pack_into("<I", sector, 440, disk_sig)
    for i, e in enumerate(entries):
        sector[446 + 16 * i: 462 + 16 * i] = e
    sector[510:512] = b"\x55\xaa"
    f.seek(0)
    f.write(sector)


def _gpt_header(current: int, backup: int, first: int, last: int, entries_lba: int,
                n_entries: int, entries_crc: int) -> bytes:
    fmt = "<8sIIIIQQQQ16sQIII"
    fields = [b"EFI PART", 0x00010000, 92, 0, 0, current, backup, first, last,
              DISK_GUID.bytes_le, entries_lba, n_entries, 128, entries_crc]
    hdr = struct.pack(fmt, *fields)
    fields[3] = zlib.crc32(hdr)
    return struct.pack(fmt, *fields).ljust(SECTOR, b"\x00")


def write_gpt(path: os.PathLike | str, parts: list[tuple[uuid.UUID, int, int, str]]) -> None:
    """Write a GPT (protective MBR, primary + backup header and array) onto an existing file.

    ``parts`` are (type GUID, first LBA, last LBA inclusive, name). Partition GUIDs are derived
    from the disk GUID so the bytes are deterministic.
    """
    size = os.path.getsize(path)
    n_sectors = size // SECTOR
    array = bytearray(128 * 128)
    for i, (ptype, first, last, name) in enumerate(parts):
        unique = uuid.uuid5(DISK_GUID, f"partition-{i + 1}")
        struct.pack_into("<16s16sQQQ72s", array, 128 * i, ptype.bytes_le, unique.bytes_le,
                         first, last, 0, name.encode("utf-16-le")[:72])
    crc = zlib.crc32(array)
    first_usable, last_usable = 34, n_sectors - 34
    with open(path, "r+b") as f:
        _write_mbr(f, [_mbr_entry(0, 0xEE, 1, n_sectors - 1)])
        f.seek(SECTOR)
        f.write(_gpt_header(1, n_sectors - 1, first_usable, last_usable, 2, 128, crc))
        f.write(array)
        f.seek((n_sectors - 33) * SECTOR)
        f.write(array)
        f.write(_gpt_header(n_sectors - 1, 1, first_usable, last_usable, n_sectors - 33, 128,
                            crc))


def read_partition_table(path: os.PathLike | str) -> tuple[str, list[Partition]]:
    """Parse the GPT (checking header and array CRCs) or MBR of a raw image.

    Returns ("gpt" | "mbr", partitions). Raises ValueError for anything else, so a test that
    feeds a broken image (or a qcow2 mistaken for raw) fails loudly.
    """
    with open(path, "rb") as f:
        mbr = f.read(SECTOR)
        if mbr[510:512] != b"\x55\xaa":
            raise ValueError("no MBR boot signature")
        entries = [struct.unpack_from("<B3sB3sII", mbr, 446 + 16 * i) for i in range(4)]
        if entries[0][2] != 0xEE:
            parts = [Partition(i + 1, e[4] * SECTOR, e[5] * SECTOR, f"0x{e[2]:02x}")
                     for i, e in enumerate(entries) if e[2]]
            return "mbr", parts
        hdr = f.read(SECTOR)
        (sig, _rev, hsize, hcrc, _r, _cur, _bak, _first, _last, _guid, entries_lba, n_entries,
         esize, ecrc) = struct.unpack_from("<8sIIIIQQQQ16sQIII", hdr)
        if sig != b"EFI PART":
            raise ValueError("protective MBR but no GPT header")
        check = bytearray(hdr[:hsize])
        struct.pack_into("<I", check, 16, 0)
        if zlib.crc32(check) != hcrc:
            raise ValueError("GPT header CRC mismatch")
        f.seek(entries_lba * SECTOR)
        array = f.read(n_entries * esize)
        if zlib.crc32(array) != ecrc:
            raise ValueError("GPT partition array CRC mismatch")
    parts = []
    for i in range(n_entries):
        ptype, _uniq, first, last, _attrs, name = struct.unpack_from("<16s16sQQQ72s", array,
                                                                     i * esize)
        if ptype == bytes(16):
            continue
        parts.append(Partition(i + 1, first * SECTOR, (last - first + 1) * SECTOR,
                               str(uuid.UUID(bytes_le=ptype)),
                               name.decode("utf-16-le").rstrip("\x00")))
    return "gpt", parts


# --- content ----------------------------------------------------------------------------------


def _populate(root: pathlib.Path, data_bytes: int, seed: int) -> None:
    """Deterministic tree: ~40% random (incompressible), ~40% text, ~20% zero-run file."""
    rng = random.Random(seed)
    (root / "etc").mkdir()
    (root / "usr/lib").mkdir(parents=True)
    (root / "var/log").mkdir(parents=True)
    (root / "etc/os-release").write_text('NAME="Fedora Linux"\nVERSION_ID=44\nID=fedora\n'
                                         'VARIANT_ID=cloud\n')
    (root / "etc/hostname").write_text("localhost\n")
    rnd = data_bytes * 2 // 5
    (root / "usr/lib/libblob.so").write_bytes(rng.randbytes(rnd))
    words = rng.choices(_WORDS, k=max(1, data_bytes * 2 // 5 // 8))
    text = " ".join(words).encode()
    (root / "usr/lib/manifest.txt").write_bytes(text)
    # A file mixing data and long zero runs (like a preallocated journal or swap-ish file)
    chunk = MiB // 4
    rest = max(0, data_bytes - rnd - len(text))
    parts = []
    while sum(map(len, parts)) < rest:
        parts.append(rng.randbytes(chunk // 4))
        parts.append(bytes(chunk))
    (root / "var/log/journal.bin").write_bytes(b"".join(parts)[:rest])
    for p in sorted(root.rglob("*"), reverse=True):
        os.utime(p, (FAKE_TIME, FAKE_TIME), follow_symlinks=False)
    os.utime(root, (FAKE_TIME, FAKE_TIME))


def make_disk_image(path: os.PathLike | str, size: int = 64 * MiB, data_mib: float = 8,
                    seed: int = 0, table: str = "gpt") -> DiskImage:
    """Create a sparse raw disk image with a partition table and a populated ext4 root.

    Layout (GPT): 1 MiB gap, BIOS boot partition (1 MiB, seeded bytes like a GRUB core),
    Linux root partition to the end with ext4. MBR: one 0x83 partition at 1 MiB. Same
    arguments -> identical bytes.
    """
    if table not in ("gpt", "mbr"):
        raise ValueError(f"table must be 'gpt' or 'mbr', not {table!r}")
    if size < 8 * MiB or size % MiB:
        raise ValueError("size must be a whole number of MiB, at least 8 MiB")
    mkfs = shutil.which("mkfs.ext4") or "/usr/sbin/mkfs.ext4"
    path = pathlib.Path(path)
    data_bytes = int(data_mib * MiB)
    with open(path, "wb") as f:
        f.truncate(size)
    n_sectors = size // SECTOR
    if table == "gpt":
        bios = (2048, 4095)
        root_first = 4096
        root_last = ((n_sectors - 34) // 2048) * 2048 - 1  # MiB-aligned end
        write_gpt(path, [(GPT_BIOS_BOOT, *bios, "bios"), (GPT_LINUX_FS, root_first,
                                                         root_last, "root")])
        with open(path, "r+b") as f:
            f.seek(bios[0] * SECTOR)
            f.write(random.Random(seed + 1).randbytes(96 * 1024))
    else:
        root_first, root_last = 2048, n_sectors - 1
        with open(path, "r+b") as f:
            _write_mbr(f, [_mbr_entry(0x80, MBR_LINUX, root_first, root_last - root_first + 1)],
                       disk_sig=0x66656469)
    fs_offset = root_first * SECTOR
    fs_size = (root_last - root_first + 1) * SECTOR
    env = dict(os.environ, E2FSPROGS_FAKE_TIME=str(FAKE_TIME), SOURCE_DATE_EPOCH=str(FAKE_TIME))
    with tempfile.TemporaryDirectory(prefix="fsroot-") as tmp:
        root = pathlib.Path(tmp)
        _populate(root, data_bytes, seed)
        files = {"/" + str(p.relative_to(root)): sha256_file(p)
                 for p in sorted(root.rglob("*")) if p.is_file()}
        subprocess.run(
            [mkfs, "-q", "-F", "-t", "ext4", "-b", "4096", "-L", FS_LABEL, "-U", str(FS_UUID),
             "-E", f"offset={fs_offset},hash_seed={FS_UUID},lazy_itable_init=1,"
                   "lazy_journal_init=1,nodiscard",
             "-d", str(root), str(path), f"{fs_size // 1024}k"],
            check=True, env=env, capture_output=True, text=True)
        _pin_inode_times(path, fs_offset, ["/"] + ["/" + str(p.relative_to(root))
                                                   for p in sorted(root.rglob("*"))], env)
    return describe_image(path, fs_offset=fs_offset, files=files)


def _pin_inode_times(image: pathlib.Path, fs_offset: int, paths: list[str],
                     env: dict[str, str]) -> None:
    """Set ctime and atime of ``paths`` inside the filesystem to FAKE_TIME (with debugfs).

    ``mkfs.ext4 -d`` copies each source file's ctime and atime, which no call can set to a
    fixed value, so without this two images made a second apart would differ in their inodes.
    """
    stamp = datetime.datetime.fromtimestamp(FAKE_TIME, datetime.UTC).strftime("%Y%m%d%H%M%S")
    commands = "".join(f"sif {path} {field} {stamp}\n" for path in paths
                       for field in ("ctime", "atime"))
    debugfs = shutil.which("debugfs") or "/usr/sbin/debugfs"
    with tempfile.NamedTemporaryFile("w", suffix=".debugfs") as script:
        script.write(commands)
        script.flush()
        subprocess.run([debugfs, "-w", "-f", script.name, f"{image}?offset={fs_offset}"],
                       check=True, env=env, capture_output=True, text=True)


def describe_image(path: os.PathLike | str, fs_offset: int = 0,
                   files: dict[str, str] | None = None) -> DiskImage:
    """Measure an image file (size, sha256, allocation, partition table)."""
    path = pathlib.Path(path)
    table, parts = read_partition_table(path)
    return DiskImage(path=path, size=path.stat().st_size, sha256=sha256_file(path),
                     allocated=allocated_bytes(path), table=table, partitions=tuple(parts),
                     fs_offset=fs_offset, files=dict(files or {}))


def extract_partition(image: os.PathLike | str, partition: Partition,
                      out: os.PathLike | str) -> pathlib.Path:
    """Copy one partition into its own file, keeping holes (only data extents are copied).

    Why: e2fsck/debugfs want a filesystem image, and tests that check what an uploader wrote
    (a snapshot, a converted image) compare filesystems, not just bytes.
    """
    out = pathlib.Path(out)
    start, end = partition.start, partition.start + partition.size
    with open(image, "rb") as src, open(out, "wb") as dst:
        dst.truncate(partition.size)
        for off, length in data_extents(image):
            lo, hi = max(off, start), min(off + length, end)
            src.seek(lo)
            while lo < hi:
                buf = src.read(min(MiB, hi - lo))
                dst.seek(lo - start)
                dst.write(buf)
                lo += len(buf)
    return out


def make_raw_image(path: os.PathLike | str, size: int = 64 * MiB, data_mib: float = 8,
                   seed: int = 0, table: str = "gpt") -> pathlib.Path:
    """``make_disk_image`` for callers that only want the path."""
    return make_disk_image(path, size=size, data_mib=data_mib, seed=seed, table=table).path


def compress_raw_xz(raw: os.PathLike | str, out: os.PathLike | str, preset: int = 6,
                    threads: int = 1, block_size: int | None = None) -> pathlib.Path:
    """Compress with the real ``xz`` into ``out`` (like Koji's ``.raw.xz`` outputs).

    ``threads=1`` gives a single-block stream as ``xz`` does by default on one core;
    ``threads=0`` makes a multi-block stream (what ``xz -T0`` produces on bigger machines, and
    what Kiwi, which builds Fedora's cloud images, asks for), of ``block_size`` bytes per block
    if given (else three times the preset's dictionary).
    """
    out = pathlib.Path(out)
    tmp = out.with_name(out.name + ".part")
    sizing = [f"--block-size={block_size}"] if block_size else []
    with open(tmp, "wb") as f:
        subprocess.run(["xz", "-z", "-c", f"-{preset}", f"-T{threads}", *sizing, "--", str(raw)],
                       stdout=f, check=True)
    tmp.replace(out)
    return out


def make_xz_image(raw: DiskImage, out: os.PathLike | str, preset: int = 6,
                  threads: int = 1, block_size: int | None = None) -> XzImage:
    """``compress_raw_xz`` plus the measurements tests assert against."""
    out = compress_raw_xz(raw.path, out, preset=preset, threads=threads, block_size=block_size)
    return XzImage(path=out, size=out.stat().st_size, sha256=sha256_file(out), raw=raw)


def make_xz_bomb(out: os.PathLike | str, size: int, *, unit: int = 64 * MiB,
                 claim: int | None = None, fill: bytes = b"\x01") -> pathlib.Path:
    """A decompression bomb: a small, valid ``.xz`` file that decompresses to ``size`` bytes of
    ``fill`` (not zeros: xz writes zero runs as holes, which would use no disk).

    Without ``claim`` it is ``size // unit`` concatenated copies of one compressed ``unit``
    (xz reads concatenated streams as one file), so ``xz --list`` tells the truth. With
    ``claim`` it is one stream whose index is rewritten (same length, fresh CRC32) to say
    ``claim`` bytes: ``xz --list`` believes it, ``xz -d`` only notices after writing it all.
    """
    out = pathlib.Path(out)
    one = size if claim is not None else unit
    if claim is None and size % unit:
        raise ValueError(f"size {size} is not a multiple of unit {unit}")
    # -T1: one block whose header records no sizes (the multi-threaded encoder records them)
    proc = subprocess.Popen(["xz", "-z", "-c", "-0", "-T1", "--check=crc64"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    block = fill * (MiB // len(fill))
    stream, _ = proc.communicate(block * (one // MiB))
    if proc.returncode != 0:
        raise RuntimeError(f"xz failed ({proc.returncode})")
    if claim is not None:
        stream = _claim_uncompressed(stream, claim)
    with open(out, "wb") as f:
        for _ in range(size // one):
            f.write(stream)
    return out


def _vli(data: bytes, pos: int) -> tuple[int, int]:
    """An xz variable-length integer at ``pos``: (value, position after it)."""
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        shift += 7
        if not byte & 0x80:
            return value, pos


def _vli_bytes(value: int, length: int) -> bytes:
    """``value`` as an xz VLI of exactly ``length`` bytes (ValueError if it does not fit)."""
    out = bytearray()
    for i in range(length):
        out.append((value & 0x7F) | (0x80 if i < length - 1 else 0))
        value >>= 7
    if value:
        raise ValueError("claimed size needs another VLI length")
    if length > 1 and out[-1] == 0:
        raise ValueError("claimed size too small for the VLI length")
    return bytes(out)


def _claim_uncompressed(stream: bytes, claim: int) -> bytes:
    """One-block xz stream with its index's uncompressed size replaced by ``claim``."""
    footer = stream[-12:]
    if footer[-2:] != b"YZ":
        raise ValueError("not an xz stream")
    index_size = (struct.unpack("<I", footer[4:8])[0] + 1) * 4
    start = len(stream) - 12 - index_size
    index = bytearray(stream[start:len(stream) - 12])
    records, pos = _vli(index, 1)
    if index[0] != 0 or records != 1:
        raise ValueError("expected an index with one record")
    _, pos = _vli(index, pos)  # unpadded size stays
    old_start = pos
    _, pos = _vli(index, pos)
    index[old_start:pos] = _vli_bytes(claim, pos - old_start)
    index[-4:] = struct.pack("<I", zlib.crc32(bytes(index[:-4])))
    return stream[:start] + bytes(index) + footer
