"""Helpers for the azure target tests: real fixed-VHD images, configs and images."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from shared.config import parse_config
from shared.files import sha256_file
from shared.images import identify
from standins.cloud_archives import make_vhdfixed_xz
from standins.disk_images import MiB, make_disk_image
from tests.harness.azure import GALLERY, RESOURCE_GROUP, STORAGE_ACCOUNT, SUBSCRIPTION
from uploader.model import ImageSource, VerifiedImage

NIGHTLY = "Fedora-Cloud-Base-Azure-Rawhide-20261125.n.0.x86_64"


@dataclasses.dataclass(frozen=True)
class Vhd:
    path: pathlib.Path
    sha256: str
    raw: pathlib.Path


@pytest.fixture(scope="session")
def azure_vhd(tmp_path_factory: pytest.TempPathFactory) -> Vhd:
    """A real .vhdfixed.xz of a 24 MiB GPT + ext4 disk with holes (shared, read-only)."""
    d = tmp_path_factory.mktemp("azure-vhd")
    raw = make_disk_image(d / "disk.raw", size=24 * MiB, data_mib=6).path
    path = make_vhdfixed_xz(raw, d / f"{NIGHTLY}.vhdfixed.xz")
    return Vhd(path, sha256_file(path), raw)


def make_image(vhd: Vhd, name: str = NIGHTLY, **source) -> VerifiedImage:
    src = ImageSource(identity=identify(name), filename=f"{name}.vhdfixed.xz",
                      url=f"https://kojipkgs.example.org/compose/{name}.vhdfixed.xz",
                      image_type="vhd-compressed", sha256=vhd.sha256,
                      **{"compose_id": "Fedora-Rawhide-20261125.n.0", **source})
    return VerifiedImage(source=src, file_path=vhd.path)


def make_config(stand_in_url: str, **azure):
    values = {"subscription_id": SUBSCRIPTION, "resource_group": RESOURCE_GROUP,
              "gallery": GALLERY, "storage_account": STORAGE_ACCOUNT,
              "regions": ["eastus2", "westeurope"], "management_endpoint": stand_in_url,
              "operation_timeout": 60, "timeout": 30, "upload_workers": 4, **azure}
    return parse_config({"uploader": {"targets": ["azure"]}, "azure": values}, "test.toml")
