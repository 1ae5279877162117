"""Koji hub fixtures: a fresh ``standins.koji_hub.KojiHub`` per test, plain HTTP or TLS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from standins.koji_hub import KojiHub


@pytest.fixture
def koji_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KojiHub]:
    """A fresh plain-HTTP Koji hub stand-in for one test (shut down afterwards)."""
    hub = KojiHub(workdir=tmp_path_factory.mktemp("koji-hub"))
    try:
        yield hub
    finally:
        hub.close()


@pytest.fixture
def koji_hub_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KojiHub]:
    """Like ``koji_hub`` but HTTPS with client-cert ``ssl_login`` (``hub.client_cert(user)``,
    ``hub.ca_cert`` for ``serverca``/``verify``)."""
    hub = KojiHub(tls=True, workdir=tmp_path_factory.mktemp("koji-hub-tls"))
    try:
        yield hub
    finally:
        hub.close()
