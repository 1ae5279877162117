"""Azure Blob Storage on loopback: Azurite's blob service (npm), installed by ``make azurite``.

azure-storage-blob talks to it through a connection string (the emulator's well-known account
``devstoreaccount1`` and key), with its real page-blob code: ``create_page_blob``,
``upload_page``, ``list_page_ranges``. Azurite accepts page writes larger than the service's
4 MiB limit, so that limit is fedimg's own to keep (and its tests' to check).
"""

from __future__ import annotations

import os
import pathlib
import socket

from standins import REPO_ROOT, StandinError
from standins.processes import ManagedProcess, start_on_free_port

# where `make azurite` installs it; AZURITE_BLOB names another azurite-blob
AZURITE_BLOB = REPO_ROOT / ".azurite" / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"
KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
       "KBHBeksoGMGw==")
START_TIMEOUT = 60.0


class Azurite:
    """A running blob service; ``connection_string`` is what AZURE_STORAGE_CONNECTION_STRING
    takes."""

    def __init__(self, process: ManagedProcess, port: int) -> None:
        self.process = process
        self.port = port
        self.blob_endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
        self.connection_string = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={self.blob_endpoint};")

    def service(self):  # noqa: ANN201 - azure.storage.blob.BlobServiceClient
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def wipe(self) -> None:
        """Delete every container (and so every blob)."""
        service = self.service()
        for container in service.list_containers():
            service.delete_container(container.name)

    def stop(self) -> None:
        self.process.stop()


def azurite_blob() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("AZURITE_BLOB") or AZURITE_BLOB)
    if not path.exists():
        raise StandinError(f"{path} is missing: run `make azurite` (npm install of azurite)")
    return path


def start_azurite(log: pathlib.Path, workspace: pathlib.Path, attempts: int = 3) -> Azurite:
    """Start azurite-blob on a free port, keeping its data in `workspace`; StandinError if it
    never answers."""
    binary = azurite_blob()

    def listening(port: int) -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    proc, port = start_on_free_port(
        "azurite-blob",
        lambda port: [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                      "--location", str(workspace), "--skipApiVersionCheck", "--loose",
                      "--disableTelemetry", "--silent"],
        listening, log, timeout=START_TIMEOUT, attempts=attempts, interval=0.2, cwd=workspace)
    return Azurite(proc, port)
