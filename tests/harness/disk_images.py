"""Disk-image fixtures: shared read-only images and a factory for private ones.

The images themselves are made by ``standins.disk_images`` (GPT or MBR, ext4 root, holes, xz).
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from standins.disk_images import DiskImage, MiB, XzImage, make_disk_image, make_xz_image


@pytest.fixture(scope="session")
def raw_image(tmp_path_factory: pytest.TempPathFactory) -> DiskImage:
    """A shared 64 MiB GPT + ext4 raw image (4 MiB of data). Read-only: copy before changing."""
    d = tmp_path_factory.mktemp("raw-image")
    return make_disk_image(d / "Fedora-Cloud-Base-Test-Rawhide-20261125.n.0.x86_64.raw",
                           size=64 * MiB, data_mib=4)


@pytest.fixture(scope="session")
def raw_xz_image(raw_image: DiskImage, tmp_path_factory: pytest.TempPathFactory) -> XzImage:
    """``raw_image`` compressed with real xz (shared, read-only)."""
    d = tmp_path_factory.mktemp("raw-xz-image")
    return make_xz_image(raw_image, d / (raw_image.path.name + ".xz"))


@pytest.fixture
def disk_image_factory(tmp_path: pathlib.Path) -> Iterator[Callable[..., DiskImage]]:
    """Make private images: ``disk_image_factory(name="disk.raw", size=..., data_mib=...,
    seed=..., table=...)`` -> DiskImage under this test's tmp_path."""

    def factory(name: str = "disk.raw", **kwargs: Any) -> DiskImage:
        return make_disk_image(tmp_path / name, **kwargs)

    yield factory


@pytest.fixture(scope="session")
def multiblock_xz_image(raw_image: DiskImage,
                        tmp_path_factory: pytest.TempPathFactory) -> XzImage:
    """``raw_image`` compressed by multi-threaded xz in 1 MiB blocks, as ``xz -T0`` (and Kiwi)
    cut a real image: most blocks hold only zeros (shared, read-only)."""
    d = tmp_path_factory.mktemp("multiblock-xz-image")
    return make_xz_image(raw_image, d / (raw_image.path.name + ".xz"), preset=1, threads=2,
                         block_size=MiB)
