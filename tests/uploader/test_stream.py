"""One-pass fetch for "stream" targets: hash, decompress and hand out blocks while downloading.

The sink here records what intake hands it; the AWS sink itself (EBS over moto) is tested in
tests/uploader/targets/aws/test_stream.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import shutil
import subprocess
import urllib.parse

import pytest
import xz.common

from shared.errors import TransientError, VerificationFailed
from shared.files import sha256_file
from uploader.intake import build_images, fetched, task_images, xzblocks
from uploader.intake.stream import BLOCK_SIZE

NAME = "Fedora-Cloud-Base-Rawhide-20261125.n.0"
ZERO = bytes(BLOCK_SIZE)


class RecordingSink:
    """Records blocks (by digest), zero blocks, the scratch disk in use at each block, and
    whether it was aborted before its target finished it."""

    def __init__(self, work_base: pathlib.Path, size: int) -> None:
        self.work_base = work_base
        self.size = size
        self.blocks: dict[int, str] = {}
        self.zeros = 0
        self.scratch: list[tuple[int, list[str]]] = []
        self.aborted: str | None = None
        self.finished = False

    def block(self, index: int, data: bytes) -> None:
        assert len(data) == BLOCK_SIZE and data != ZERO and index not in self.blocks
        self.blocks[index] = hashlib.sha256(data).hexdigest()
        files = [p for p in self.work_base.rglob("*") if p.is_file()]
        self.scratch.append((sum(p.stat().st_blocks * 512 for p in files),
                             sorted(p.name for p in files)))

    def zero(self) -> None:
        self.zeros += 1

    def abort(self, why: str) -> None:
        if not self.finished and self.aborted is None:
            self.aborted = why


def expected_blocks(raw: pathlib.Path) -> tuple[dict[int, str], int]:
    """{index: sha256} of the non-zero blocks of a raw disk, and the count of zero blocks."""
    found, zeros = {}, 0
    with open(raw, "rb") as f:
        for index in range(-(-raw.stat().st_size // BLOCK_SIZE)):
            data = f.read(BLOCK_SIZE).ljust(BLOCK_SIZE, b"\0")
            if data == ZERO:
                zeros += 1
            else:
                found[index] = hashlib.sha256(data).hexdigest()
    return found, zeros


@pytest.fixture(params=["one block", "many blocks"])
def xz_image(request):
    """The test image as single-threaded xz writes it (one block: all of it is decoded) and as
    xz -T0 does (blocks of zeros are skipped undecoded)."""
    return request.getfixturevalue(
        "raw_xz_image" if request.param == "one block" else "multiblock_xz_image")


@pytest.fixture
def sinks(config):
    made: list[RecordingSink] = []

    def opener(source, size, *, config, clients):
        made.append(RecordingSink(pathlib.Path(config.uploader.work_dir), size))
        return made[-1]

    return made, {"rec": opener}


def served(hub, url: str) -> int:
    return hub.served_bytes.get(urllib.parse.unquote(urllib.parse.urlsplit(url).path), 0)


def _build(hub, path: pathlib.Path) -> int:
    return hub.add_image_build(files={"x86_64": {f"{NAME}.x86_64.raw.xz": path}})


def test_blocks_arrive_during_the_download_without_a_raw_file(koji_hub, config, clients,
                                                              xz_image, sinks):
    made, streams = sinks
    (source,) = build_images(_build(koji_hub, xz_image.path), config=config,
                             session=clients.koji)
    with fetched(source, config=config, clients=clients, raw=False, streams=streams) as image:
        (sink,) = made
        assert image.streamed == {"rec": sink} and image.raw_path is None
        assert sink.aborted is None
        want, zeros = expected_blocks(xz_image.raw.path)
        assert sink.blocks == want and sink.zeros == zeros  # exactly the non-zero blocks
        assert sink.size == xz_image.raw.size  # from the xz index, before any block
        assert (image.source.sha256, image.source.size) == (xz_image.sha256,
                                                             xz_image.size)
        sink.finished = True
    # no raw file, no compressed copy: the scratch disk is at most the compressed size
    assert all(not any(n.endswith(".raw") for n in names) for _, names in sink.scratch)
    assert max(used for used, _ in sink.scratch) <= xz_image.size
    assert sink.aborted is None
    assert served(koji_hub, source.url) <= xz_image.size + 260 * 1024  # body + index


def test_a_raw_target_in_the_same_process_gets_its_file_from_the_same_pass(
        koji_hub, config, clients, xz_image, sinks):
    made, streams = sinks
    (source,) = build_images(_build(koji_hub, xz_image.path), config=config,
                             session=clients.koji)
    with fetched(source, config=config, clients=clients, raw=True, keep_file=True,
                 streams=streams) as image:
        assert sha256_file(image.raw_path) == xz_image.raw.sha256
        assert os.stat(image.raw_path).st_blocks * 512 < xz_image.raw.size // 4  # sparse
        assert sha256_file(image.file_path) == xz_image.sha256
        assert made[0].blocks == expected_blocks(xz_image.raw.path)[0]
    # fetched once: the body once plus the two small range requests for the xz index
    assert xz_image.size <= served(koji_hub, source.url) <= xz_image.size + 260 * 1024


def _flip_byte_at(path: pathlib.Path, fraction: float) -> None:
    with open(path, "r+b") as f:
        f.seek(int(path.stat().st_size * fraction))
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize("fault", ["sha256", "corrupt xz", "truncate", "size"])
def test_a_download_that_fails_verification_aborts_the_sinks(koji_hub, config, clients,
                                                             xz_image, sinks, tmp_path,
                                                             fault):
    made, streams = sinks
    copy = tmp_path / "copy.raw.xz"
    shutil.copyfile(xz_image.path, copy)
    if fault == "corrupt xz":  # the source records the checksum of the broken file itself
        _flip_byte_at(copy, 0.7)
    (source,) = build_images(_build(koji_hub, copy), config=config, session=clients.koji)
    expect: tuple[type[Exception], str]
    if fault == "sha256":  # same length, one byte changed well after the first blocks
        _flip_byte_at(koji_hub.file_path(source.url), 0.7)
        expect = (VerificationFailed, "sha256 mismatch")
    elif fault == "corrupt xz":
        expect = (VerificationFailed, "not valid xz")
    elif fault == "truncate":
        koji_hub.corrupt(source.url, "truncate")
        expect = (TransientError, "gave up after 2 attempts")
    else:
        source = dataclasses.replace(source, size=source.size - 1)
        expect = (VerificationFailed, "server has")
    with pytest.raises(expect[0], match=expect[1]), \
            fetched(source, config=config, clients=clients, raw=False, streams=streams):
        pytest.fail("an unverified image must never be yielded")
    if fault in ("sha256", "corrupt xz"):
        (sink,) = made
        assert sink.blocks  # it had blocks already: they must be thrown away
        assert sink.aborted and expect[1] in sink.aborted
    assert list(pathlib.Path(config.uploader.work_dir).iterdir()) == []


def test_a_cut_off_download_resumes_where_it_stopped(koji_hub, make_config, clients,
                                                     xz_image, sinks):
    """The stand-in holds the body halfway; after fetch_timeout without a byte the fetch asks
    for the rest with a Range request, and the whole is verified as one."""
    config = make_config(uploader={"fetch_timeout": 1})
    made, streams = sinks
    tid = koji_hub.add_image_task(files={"x86_64": {f"{NAME}.x86_64.raw.xz": xz_image.path}})
    (source,) = task_images(tid, config=config, session=clients.koji)
    koji_hub.unstalled.clear()
    koji_hub.corrupt(source.url, "stall")
    try:
        with fetched(source, config=config, clients=clients, raw=True,
                     streams=streams) as image:
            assert sha256_file(image.raw_path) == xz_image.raw.sha256
            assert image.source.sha256 == xz_image.sha256
            assert made[0].blocks == expected_blocks(xz_image.raw.path)[0]
    finally:
        koji_hub.unstalled.set()
    # the first half once (less what was still in socket buffers), then only the rest: not
    # the whole body again, which would be 2 x size
    assert served(koji_hub, source.url) < xz_image.size * 3 // 2


def test_a_server_without_ranges_gets_the_classic_path(koji_hub, config, clients,
                                                      raw_xz_image, sinks):
    made, streams = sinks
    (source,) = build_images(_build(koji_hub, raw_xz_image.path), config=config,
                             session=clients.koji)
    koji_hub.ranges = False  # it answers a Range with the whole file and a 200
    with fetched(source, config=config, clients=clients, raw=False, streams=streams) as image:
        assert made == [] and image.streamed == {}
        assert sha256_file(image.raw_path) == raw_xz_image.raw.sha256  # the target reads it


def test_more_output_than_the_index_declares_is_refused(koji_hub, config, clients, sinks,
                                                        raw_xz_image, monkeypatch):
    made, streams = sinks
    (source,) = build_images(_build(koji_hub, raw_xz_image.path), config=config,
                             session=clients.koji)
    # an index that understates the disk (a decompression bomb's trick)
    monkeypatch.setattr("uploader.intake.fetch.xz_declared_size",
                        lambda *a, **k: raw_xz_image.raw.size - 3 * BLOCK_SIZE)
    with pytest.raises(VerificationFailed, match="past the .* bytes its xz index declares"), \
            fetched(source, config=config, clients=clients, raw=False, streams=streams):
        pytest.fail("unreachable")
    assert made[0].aborted



def test_a_disk_that_ends_inside_a_block_gets_a_padded_last_block(koji_hub, config, clients,
                                                                  sinks, tmp_path):
    made, streams = sinks
    raw = tmp_path / "odd.raw"
    with open(raw, "wb") as f:  # 3 blocks and 1000 bytes; data in the first and the last
        f.truncate(3 * BLOCK_SIZE + 1000)
        f.write(os.urandom(4096))
        f.seek(3 * BLOCK_SIZE)
        f.write(os.urandom(1000))
    xz = tmp_path / f"{NAME}.x86_64.raw.xz"
    with open(xz, "wb") as out:
        subprocess.run(["xz", "-T0", "-c", str(raw)], stdout=out, check=True)
    tid = koji_hub.add_image_task(files={"x86_64": {xz.name: xz}})
    (source,) = task_images(tid, config=config, session=clients.koji)
    with fetched(source, config=config, clients=clients, raw=True, streams=streams) as image:
        assert sha256_file(image.raw_path) == sha256_file(raw)  # 1000 bytes, not padded
        assert image.raw_path.stat().st_size == raw.stat().st_size
        assert made[0].blocks == expected_blocks(raw)[0]  # the last one padded with zeros
        assert sorted(made[0].blocks) == [0, 3] and made[0].zeros == 2


def _layout(path: pathlib.Path) -> xzblocks.Layout:
    data = path.read_bytes()
    layout = xzblocks.parse_layout(data[:4096], data[-256 * 1024:], len(data))
    assert layout is not None
    return layout


def _block_offsets(layout: xzblocks.Layout) -> list[int]:
    """Where each block starts in the file (after the 12-byte stream header)."""
    offsets, at = [], 12
    for unpadded, _ in layout.records:
        offsets.append(at)
        at += -(-unpadded // 4) * 4
    return offsets


def test_blocks_of_zeros_are_skipped_without_decompressing(koji_hub, config, clients, sinks,
                                                          multiblock_xz_image, caplog):
    made, streams = sinks
    (source,) = build_images(_build(koji_hub, multiblock_xz_image.path), config=config,
                             session=clients.koji)
    raw = multiblock_xz_image.raw.path.read_bytes()
    zero_mib = sum(raw[i:i + 2**20] == bytes(2**20) for i in range(0, len(raw), 2**20))
    caplog.set_level("INFO", logger="uploader.intake.stream")
    with fetched(source, config=config, clients=clients, raw=True, streams=streams) as image:
        assert sha256_file(image.raw_path) == multiblock_xz_image.raw.sha256
        want, zeros = expected_blocks(multiblock_xz_image.raw.path)
        assert made[0].blocks == want and made[0].zeros == zeros
    blocks = len(_layout(multiblock_xz_image.path).records)
    assert f"{zero_mib} of {blocks} xz blocks known to be zeros" in caplog.text
    assert zero_mib > blocks // 2


@pytest.mark.parametrize("which", ["a block of zeros", "a block of data"])
def test_a_broken_or_misdeclared_block_is_refused(koji_hub, config, clients, sinks, tmp_path,
                                                 multiblock_xz_image, which):
    """The source records the checksum of the broken file itself: only xz's checks can catch
    it, also for a block that is never handed to xz as such."""
    made, streams = sinks
    raw = multiblock_xz_image.raw.path.read_bytes()
    layout = _layout(multiblock_xz_image.path)
    zero = [raw[i * 2**20:(i + 1) * 2**20] == bytes(2**20) for i in range(len(layout.records))]
    # the third zero (or data) block: two zero blocks before it taught that content already
    index = [i for i, z in enumerate(zero) if z == (which == "a block of zeros")][2]
    data = bytearray(multiblock_xz_image.path.read_bytes())
    data[_block_offsets(layout)[index] + 40] ^= 0x55  # inside its compressed data
    broken = tmp_path / f"{NAME}.x86_64.raw.xz"
    broken.write_bytes(data)
    (source,) = build_images(_build(koji_hub, broken), config=config, session=clients.koji)
    with pytest.raises(VerificationFailed, match="not valid xz"), \
            fetched(source, config=config, clients=clients, raw=False, streams=streams):
        pytest.fail("unreachable")
    assert made[0].aborted
    # an index that declares a block 4 KiB smaller than it decodes to (fresh CRC32, same length)
    records = list(layout.records)
    records[index] = (records[index][0], records[index][1] - 4096)
    ending = xz.common.create_xz_index_footer(layout.check, records)
    assert len(ending) == len(layout.index_and_footer)
    lying = tmp_path / "lying" / broken.name
    lying.parent.mkdir()
    lying.write_bytes(multiblock_xz_image.path.read_bytes()[:-len(ending)] + ending)
    (source,) = build_images(_build(koji_hub, lying), config=config, session=clients.koji)
    with pytest.raises(VerificationFailed, match="not valid xz|past the"), \
            fetched(source, config=config, clients=clients, raw=False, streams=streams):
        pytest.fail("unreachable")
    assert made[1].aborted and made[1].size == layout.disk_size - 4096
