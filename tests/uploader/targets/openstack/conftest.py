"""Helpers for the openstack target tests: a real qcow2 (qemu-img output), images, configs."""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess

import pytest

from shared.config import Config, parse_config
from shared.files import sha256_file
from shared.images import identify
from standins.disk_images import DiskImage
from uploader.model import ImageSource, VerifiedImage

GENERIC = "Fedora-Cloud-Base-Generic-Rawhide-20261125.n.0.x86_64"
COMPOSE = "Fedora-Rawhide-20261125.n.0"


@dataclasses.dataclass(frozen=True)
class Qcow2:
    path: pathlib.Path
    size: int
    sha256: str
    raw: DiskImage


def make_qcow2(raw: DiskImage, out: pathlib.Path) -> Qcow2:
    """The raw disk as a compressed qcow2, the way Koji/pungi ship the Generic image."""
    subprocess.run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", str(raw.path),
                    str(out)], check=True, capture_output=True)
    return Qcow2(out, out.stat().st_size, sha256_file(out), raw)


@pytest.fixture(scope="session")
def qcow2_image(raw_image: DiskImage, tmp_path_factory: pytest.TempPathFactory) -> Qcow2:
    """``raw_image`` as qcow2 (shared, read-only)."""
    return make_qcow2(raw_image, tmp_path_factory.mktemp("qcow2") / f"{GENERIC}.qcow2")


def make_image(qcow2: Qcow2 | pathlib.Path, name: str = GENERIC, **source) -> VerifiedImage:
    """A VerifiedImage as intake hands it to a target that needs the file."""
    path = qcow2.path if isinstance(qcow2, Qcow2) else qcow2
    defaults = {"compose_id": COMPOSE, "size": path.stat().st_size, "sha256": sha256_file(path)}
    src = ImageSource(identity=identify(name), filename=f"{name}.qcow2",
                      url=f"https://kojipkgs.example.org/compose/{COMPOSE}/{name}.qcow2",
                      image_type="qcow2", **{**defaults, **source})
    return VerifiedImage(source=src, file_path=path)


def make_config(clouds: list[str], **openstack) -> Config:
    return parse_config({"uploader": {"targets": ["openstack"]},
                         "openstack": {"clouds": clouds, **openstack}}, "test.toml")
