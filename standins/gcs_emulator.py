"""Google Cloud Storage on loopback: the ``gcp-storage-emulator`` process (PyPI).

google-cloud-storage talks to it when ``STORAGE_EMULATOR_HOST`` names it, with anonymous
credentials, through its real resumable-upload and checksum code; the emulator checks a crc32c
sent with an upload and refuses a mismatch, as GCS does. Started in memory; ``wipe`` forgets
every object (buckets stay).
"""

from __future__ import annotations

import pathlib
import sys

import requests

from standins.processes import ManagedProcess, start_on_free_port

EMULATOR = pathlib.Path(sys.executable).parent / "gcp-storage-emulator"
START_TIMEOUT = 30.0
HTTP_TIMEOUT = 10.0


class GcsEmulator:
    """A running emulator; ``url`` is what STORAGE_EMULATOR_HOST takes."""

    def __init__(self, process: ManagedProcess, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    def env(self) -> dict[str, str]:
        """The environment that sends google-cloud-storage here."""
        return {"STORAGE_EMULATOR_HOST": self.url}

    def wipe(self) -> None:
        """Forget every object, keep the buckets."""
        requests.get(f"{self.url}/wipe", params={"keep-buckets": "1"},
                     timeout=HTTP_TIMEOUT).raise_for_status()

    def objects(self, bucket: str) -> list[dict]:
        """Every object of `bucket` (its JSON resource: name, size, crc32c, metadata...)."""
        resp = requests.get(f"{self.url}/storage/v1/b/{bucket}/o", timeout=HTTP_TIMEOUT)
        resp.raise_for_status()
        return resp.json().get("items", [])

    def create_bucket(self, bucket: str, project: str = "fedimg-test") -> None:
        resp = requests.post(f"{self.url}/storage/v1/b", params={"project": project},
                             json={"name": bucket}, timeout=HTTP_TIMEOUT)
        if resp.status_code not in (200, 409):
            resp.raise_for_status()

    def stop(self) -> None:
        self.process.stop()


def start_gcs_emulator(log: pathlib.Path, attempts: int = 3) -> GcsEmulator:
    """Start the emulator on a free port (in memory); StandinError if it never answers."""
    proc, port = start_on_free_port(
        "gcp-storage-emulator",
        lambda port: [str(EMULATOR), "start", "--host", "127.0.0.1", "--port", str(port),
                      "--in-memory", "--quiet"],
        lambda port: requests.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200,
        log, timeout=START_TIMEOUT, attempts=attempts)
    return GcsEmulator(proc, port)
