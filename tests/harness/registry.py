"""OCI registry fixtures: a fresh ``standins.registry.LocalRegistry`` (TLS + basic auth) per test,
and small real container archives from ``standins.container_archives``."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from standins.container_archives import ContainerArchive, make_container_archive
from standins.registry import LocalRegistry


@pytest.fixture
def registry_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., LocalRegistry]]:
    """registry_factory() -> a started registry of its own; all are stopped after the test."""
    started: list[LocalRegistry] = []

    def factory(**kwargs: Any) -> LocalRegistry:
        registry = LocalRegistry(tmp_path_factory.mktemp("registry"), **kwargs)
        started.append(registry)
        return registry.start()

    try:
        yield factory
    finally:
        for registry in started:
            registry.stop()


@pytest.fixture
def registry(registry_factory: Callable[..., LocalRegistry]) -> LocalRegistry:
    """One running registry on 127.0.0.1 (``.host``, ``.authfile``, ``.cert_dir``)."""
    return registry_factory()


@pytest.fixture
def container_archive_factory(tmp_path: pathlib.Path) -> Callable[..., ContainerArchive]:
    """container_archive_factory(name, arch, **kwargs) -> an archive under this test's tmp_path
    (``standins.container_archives.make_container_archive`` arguments)."""

    def factory(name: str, arch: str, **kwargs: Any) -> ContainerArchive:
        return make_container_archive(tmp_path / "archives" / name, arch, **kwargs)

    return factory
