"""The artifacts themselves, checked with the real tools: the qcow2 is compressed, clean and
converts back to the raw's bytes; the raw.tar.xz holds one GNU sparse member that extracts to the
raw's bytes with its holes."""

from __future__ import annotations

import json
import pathlib
import subprocess
import tarfile

import pytest

from shared.files import sha256_file
from standins.disk_images import allocated_bytes, data_extents
from uploader.model import Clients
from uploader.targets.downloads import publish_downloads

from .conftest import NAME, Case, Recorder, config_for

pytestmark = pytest.mark.slow


def _publish(case: Case, dest: pathlib.Path, emit: Recorder, **downloads) -> pathlib.Path:
    outcome = publish_downloads(case.image, config=config_for(dest, **downloads),
                                clients=Clients(), emit=emit)
    assert outcome.ok and sorted(outcome.published) == ["qcow2", "raw.tar.xz"]
    return dest / "Rawhide" / "nightly"


def _qemu_json(*args: str) -> dict:
    out = subprocess.run(["qemu-img", *args, "--output=json"], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def test_qcow2_is_zlib_compressed_clean_and_converts_back(case, dest, emit, tmp_path):
    qcow2 = _publish(case, dest, emit) / f"{NAME}.qcow2"

    info = _qemu_json("info", str(qcow2))
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == case.disk.size
    assert info["format-specific"]["data"]["compression-type"] == "zlib"
    assert info["format-specific"]["data"]["compat"] == "0.10"  # readable by any QEMU

    check = subprocess.run(["qemu-img", "check", "--output=json", str(qcow2)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    report = json.loads(check.stdout)
    assert report["check-errors"] == 0
    assert report["compressed-clusters"] > 0

    # Smaller than the same conversion without -c: compression really happened.
    plain = tmp_path / "plain.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(case.disk.path), str(plain)],
                   check=True)
    assert qcow2.stat().st_size < 0.9 * plain.stat().st_size

    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(qcow2), str(back)], check=True)
    assert sha256_file(back) == case.disk.sha256
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(case.disk.path),
                    str(qcow2)], check=True)


def test_qcow2_zstd_when_configured(case, dest, emit):
    qcow2 = _publish(case, dest, emit, qcow2_compression="zstd") / f"{NAME}.qcow2"
    data = _qemu_json("info", str(qcow2))["format-specific"]["data"]
    assert data["compression-type"] == "zstd"
    assert data["compat"] == "1.1"
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(case.disk.path),
                    str(qcow2)], check=True)


def test_raw_tar_xz_has_one_gnu_sparse_member_that_restores_bytes_and_holes(
        case, dest, emit, tmp_path):
    archive = _publish(case, dest, emit) / f"{NAME}.raw.tar.xz"

    assert subprocess.run(["xz", "--test", str(archive)]).returncode == 0

    listing = subprocess.run(["tar", "--list", "--verbose", "--file", str(archive)],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(listing) == 1
    assert listing[0].split()[-1] == f"{NAME}.raw"
    assert listing[0].startswith("-rw-r--r-- 0/0")
    assert int(listing[0].split()[2]) == case.disk.size

    # The member is a GNU sparse member ('S' type flag in the ustar/GNU header): the format
    # RHEL 6's tar reads. Python's tarfile reads (not writes) these, a second opinion.
    header = subprocess.run(["xz", "-dc", str(archive)], capture_output=True, check=True
                            ).stdout[:512]
    assert header[156:157] == b"S"
    assert header[257:265] == b"ustar  \x00"  # GNU magic, not POSIX "ustar\x0000"
    with tarfile.open(archive, "r:xz") as tf:
        (member,) = tf.getmembers()
        assert member.issparse() and member.size == case.disk.size

    out = tmp_path / "extracted"
    out.mkdir()
    subprocess.run(["tar", "-xSf", str(archive), "-C", str(out)], check=True)
    restored = out / f"{NAME}.raw"
    assert restored.stat().st_size == case.disk.size
    assert sha256_file(restored) == case.disk.sha256
    # Holes came back: the allocation is far below the apparent size, like the original.
    assert allocated_bytes(restored) < case.disk.size / 4
    assert allocated_bytes(restored) <= 2 * case.disk.allocated
    assert len(data_extents(restored)) > 1
