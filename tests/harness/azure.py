"""Azure fixtures: Azurite's blob service (a process) and the Compute Gallery stand-in (a thread,
over HTTPS with a throwaway CA).

Thin pytest wrappers over ``standins.azurite`` and ``standins.azure_gallery``; the ``azure``
fixture empties both, makes the gallery release engineering would have made, and points
azure-storage-blob, azure-identity and azure-mgmt-compute at them through the environment
(AZURE_STORAGE_CONNECTION_STRING, the managed-identity variables, REQUESTS_CA_BUNDLE), as
production code finds Azure.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Iterator

import pytest

from standins import StandinError
from standins.azure_gallery import AzureGallery
from standins.azurite import Azurite, start_azurite
from standins.koji_pki import KojiPKI

SUBSCRIPTION = "0b5e1f2a-7d4c-4e8b-9a61-3f2d5c8e7a10"
RESOURCE_GROUP = "fedora-images"
GALLERY = "Fedora"
LOCATION = "eastus"
PUBLIC_NAME = "Fedora-5e266ba4-2250-406d-adad-5d73860d958f"
STORAGE_ACCOUNT = "devstoreaccount1"
AZURE_ENV_TO_CLEAR = ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID",
                      "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE",
                      "AZURE_USERNAME", "AZURE_PASSWORD", "MSI_ENDPOINT", "MSI_SECRET",
                      "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    d = tmp_path_factory.mktemp("azurite")
    try:
        emulator = start_azurite(d / "azurite.log", d)
    except StandinError as exc:
        pytest.fail(str(exc))
    try:
        yield emulator
    finally:
        emulator.stop()


@dataclasses.dataclass
class GalleryStandin:
    api: AzureGallery
    ca_bundle: pathlib.Path


@pytest.fixture(scope="session")
def azure_gallery(azurite: Azurite,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[GalleryStandin]:
    d = tmp_path_factory.mktemp("azure-pki")
    pki = KojiPKI(d)
    api = AzureGallery(storage_connection_string=azurite.connection_string)
    api.start(tls=(str(pki.server_path), str(pki.server_path)))
    try:
        yield GalleryStandin(api, pki.ca_path)
    finally:
        api.stop()


@dataclasses.dataclass
class Azure:
    storage: Azurite
    gallery: AzureGallery
    subscription: str = SUBSCRIPTION
    resource_group: str = RESOURCE_GROUP
    name: str = GALLERY
    location: str = LOCATION

    def blobs(self, container: str = "fedimg-staging") -> list:
        client = self.storage.service().get_container_client(container)
        return list(client.list_blobs(include=["metadata"])) if client.exists() else []

    def versions(self) -> dict[str, dict]:
        """'<definition>/<version>' -> the version resource (with its replication status)."""
        return {f"{k[3]}/{k[4]}": v for k, v in self.gallery.versions.items()}

    def definitions(self) -> dict[str, dict]:
        return {k[3]: v for k, v in self.gallery.definitions.items()}


@pytest.fixture
def azure(azurite: Azurite, azure_gallery: GalleryStandin, monkeypatch: pytest.MonkeyPatch,
          tmp_path: pathlib.Path) -> Azure:
    """An empty staging account and a gallery with community info, reachable through the
    environment; a developer's own Azure login can never leak in."""
    azurite.wipe()
    api = azure_gallery.api
    api.reset()
    api.add_gallery(SUBSCRIPTION, RESOURCE_GROUP, GALLERY, LOCATION, PUBLIC_NAME)
    for name in AZURE_ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    bundle = tmp_path / "ca-bundle.pem"
    system = pathlib.Path(os.environ.get("REQUESTS_CA_BUNDLE") or "/etc/ssl/certs/"
                          "ca-certificates.crt")
    bundle.write_bytes((system.read_bytes() if system.exists() else b"")
                       + azure_gallery.ca_bundle.read_bytes())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{api.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", api.identity_header)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "no-azure-cli"))
    return Azure(azurite, api)
