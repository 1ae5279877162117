"""Glance fixtures: two real glance-api processes ("clouds") per test session.

Thin pytest wrappers over ``standins.glance``. Every image is deleted before each test, and the
test gets a clouds.yaml naming both clouds through OS_CLIENT_CONFIG_FILE, the way openstacksdk
finds clouds in production; a developer's own clouds.yaml never leaks in.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Iterator

import pytest

from standins import StandinError
from standins.glance import GlanceServer, clouds_yaml, glance_available, start_glance

CLOUD_NAMES = ("cloud-a", "cloud-b")


@pytest.fixture(scope="session")
def glance_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[GlanceServer]]:
    """Two glance-api processes, started once; stopped by PID at session end."""
    missing = glance_available()
    if missing:
        pytest.fail(f"Glance is not installed: {missing}", pytrace=False)
    servers: list[GlanceServer] = []
    try:
        for name in CLOUD_NAMES:
            servers.append(start_glance(tmp_path_factory.mktemp(f"glance-{name}"), name))
    except StandinError as exc:
        for server in servers:
            server.stop()
        pytest.fail(str(exc), pytrace=False)
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


@dataclasses.dataclass
class Clouds:
    """The clouds of one test: the servers by cloud name, and the clouds.yaml naming them."""

    servers: dict[str, GlanceServer]
    clouds_yaml: pathlib.Path

    @property
    def names(self) -> list[str]:
        return list(self.servers)

    def uploads(self, since: dict[str, int] | None = None) -> dict[str, int]:
        """Image data uploads served per cloud, in all or since an earlier count."""
        return {name: server.uploads_seen() - (since or {}).get(name, 0)
                for name, server in self.servers.items()}

    def connect(self, name: str):  # noqa: ANN201 - an openstack.connection.Connection
        """openstacksdk's view of one cloud, as fedimg gets it (through clouds.yaml)."""
        import openstack

        return openstack.connect(cloud=name, api_timeout=30)


@pytest.fixture
def glance_clouds(glance_servers: list[GlanceServer], tmp_path: pathlib.Path,
                  monkeypatch: pytest.MonkeyPatch) -> Clouds:
    """Both clouds emptied, and a clouds.yaml for them in OS_CLIENT_CONFIG_FILE."""
    for server in glance_servers:
        server.delete_all()
    path = tmp_path / "clouds.yaml"
    path.write_text(clouds_yaml({s.name: s.url for s in glance_servers}))
    for name in list(os.environ):
        if name.startswith("OS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    monkeypatch.setenv("OS_CLIENT_SECURE_FILE", str(tmp_path / "no-secure.yaml"))
    return Clouds({s.name: s for s in glance_servers}, path)
