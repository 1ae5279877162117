"""CHECKSUM parsing, merging and rendering; the rendered file is checked by the real sha256sum."""

from __future__ import annotations

import hashlib
import pathlib
import subprocess

from shared.files import sha256_file
from uploader.targets.downloads import checksum
from uploader.targets.downloads.checksum import Entry

SIGNED = """\
-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

# Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2: 491716608 bytes
SHA256 (Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2) = \
6205AE0C524B4D1816DBD3573CE29B5C44ED26C9FBC874FBE48C41C89DD0BAC2
SHA256 (legacy-without-size.raw.xz) = \
1111111111111111111111111111111111111111111111111111111111111111
SHA512 (other-algorithm.iso) = abcd
-----BEGIN PGP SIGNATURE-----

iQIzBAEBCAAdFiEE...
-----END PGP SIGNATURE-----
"""


def test_parse_reads_fedora_signed_checksum_and_ignores_the_rest():
    entries = checksum.parse(SIGNED)
    assert entries == {
        "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2": Entry(
            "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2",
            "6205ae0c524b4d1816dbd3573ce29b5c44ed26c9fbc874fbe48c41c89dd0bac2",
            491716608,
        ),
        "legacy-without-size.raw.xz": Entry("legacy-without-size.raw.xz", "1" * 64, None),
    }


def test_merge_replaces_same_name_keeps_others_and_drops_vanished_files():
    old = {
        "a.qcow2": Entry("a.qcow2", "a" * 64, 1),
        "b.qcow2": Entry("b.qcow2", "b" * 64, 2),
        "gone.qcow2": Entry("gone.qcow2", "c" * 64, 3),
    }
    new = [Entry("a.qcow2", "d" * 64, 4), Entry("e.raw.tar.xz", "e" * 64, 5)]
    merged = checksum.merge(old, new, present={"a.qcow2", "b.qcow2", "e.raw.tar.xz"})
    assert merged == {
        "a.qcow2": Entry("a.qcow2", "d" * 64, 4),
        "b.qcow2": Entry("b.qcow2", "b" * 64, 2),
        "e.raw.tar.xz": Entry("e.raw.tar.xz", "e" * 64, 5),
    }


def test_render_round_trips_and_is_sorted():
    entries = {
        "z.raw.tar.xz": Entry("z.raw.tar.xz", "f" * 64, 10),
        "a.qcow2": Entry("a.qcow2", "0" * 64, 7),
        "legacy": Entry("legacy", "1" * 64, None),
    }
    text = checksum.render(entries)
    assert text.splitlines() == [
        "# a.qcow2: 7 bytes",
        f"SHA256 (a.qcow2) = {'0' * 64}",
        f"SHA256 (legacy) = {'1' * 64}",
        "# z.raw.tar.xz: 10 bytes",
        f"SHA256 (z.raw.tar.xz) = {'f' * 64}",
    ]
    assert checksum.parse(text) == entries


def test_rendered_file_verifies_with_real_sha256sum(tmp_path: pathlib.Path):
    entries = {}
    for i, name in enumerate(["one.qcow2", "two.raw.tar.xz"]):
        data = bytes(range(256)) * (i + 3)
        (tmp_path / name).write_bytes(data)
        entries[name] = Entry(name, sha256_file(tmp_path / name), len(data))
        assert entries[name].sha256 == hashlib.sha256(data).hexdigest()
    (tmp_path / "CHECKSUM").write_text(checksum.render(entries))
    ok = subprocess.run(["sha256sum", "--strict", "-c", "CHECKSUM"], cwd=tmp_path,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count(": OK") == 2
    (tmp_path / "one.qcow2").write_bytes(b"tampered")
    bad = subprocess.run(["sha256sum", "-c", "CHECKSUM"], cwd=tmp_path, capture_output=True,
                         text=True)
    assert bad.returncode != 0 and "one.qcow2: FAILED" in bad.stdout
