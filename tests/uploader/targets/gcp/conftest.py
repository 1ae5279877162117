"""Helpers for the gcp target tests: real GCE archives, configs and images for publish_gcp."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from shared.config import parse_config
from shared.files import sha256_file
from shared.images import identify
from standins.cloud_archives import make_gce_archive
from standins.disk_images import MiB, make_disk_image
from tests.harness.gcp import BUCKET, PROJECT
from uploader.model import ImageSource, VerifiedImage

NIGHTLY = "Fedora-Cloud-Base-GCE-Rawhide-20261125.n.0.x86_64"


@dataclasses.dataclass(frozen=True)
class Archive:
    path: pathlib.Path
    sha256: str


@pytest.fixture(scope="session")
def gce_archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """A real GCE archive (tar.gz with a sparse disk.raw holding GPT + ext4), shared, read-only.

    Larger than google-cloud-storage's 8 MiB multipart limit, so it travels as a resumable
    upload, in several chunks of 1 MiB (the tests' gcp.upload_chunk_mib)."""
    d = tmp_path_factory.mktemp("gce")
    raw = make_disk_image(d / "disk.raw", size=64 * MiB, data_mib=16).path
    path = make_gce_archive(raw, d / f"{NIGHTLY}.tar.gz")
    return Archive(path, sha256_file(path))


@pytest.fixture(scope="session")
def other_archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    d = tmp_path_factory.mktemp("gce-other")
    raw = make_disk_image(d / "disk.raw", size=32 * MiB, data_mib=2, seed=7).path
    path = make_gce_archive(raw, d / "other.tar.gz")
    return Archive(path, sha256_file(path))


def make_image(archive: Archive, name: str = NIGHTLY, **source) -> VerifiedImage:
    src = ImageSource(identity=identify(name), filename=f"{name}.tar.gz",
                      url=f"https://kojipkgs.example.org/compose/{name}.tar.gz",
                      image_type="tar-gz", sha256=archive.sha256,
                      size=archive.path.stat().st_size if archive.path.exists() else None,
                      **{"compose_id": "Fedora-Rawhide-20261125.n.0", **source})
    return VerifiedImage(source=src, file_path=archive.path)


def make_config(**gcp):
    values = {"project": PROJECT, "bucket": BUCKET, "operation_timeout": 60, "timeout": 30,
              "upload_chunk_mib": 1, **gcp}
    return parse_config({"uploader": {"targets": ["gcp"]}, "gcp": values}, "test.toml")
