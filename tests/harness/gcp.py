"""Google Cloud fixtures: the storage emulator (a process) and the GCE images stand-in (a thread).

Thin pytest wrappers over ``standins.gcs_emulator`` and ``standins.gce_images``; the ``gcp``
fixture wipes both and points google-cloud-storage and google-cloud-compute at them through the
environment, as production code finds Google Cloud (STORAGE_EMULATOR_HOST, COMPUTE_EMULATOR_HOST).
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterator

import pytest

from standins import StandinError
from standins.gce_images import GceImages
from standins.gcs_emulator import GcsEmulator, start_gcs_emulator

PROJECT = "fedimg-test"
BUCKET = "fedimg-staging-test"


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    try:
        emulator = start_gcs_emulator(tmp_path_factory.mktemp("gcs") / "emulator.log")
    except StandinError as exc:
        pytest.fail(str(exc))
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def gce_standin(gcs_emulator: GcsEmulator) -> Iterator[GceImages]:
    api = GceImages(storage_url=gcs_emulator.url)
    api.start()
    try:
        yield api
    finally:
        api.stop()


@dataclasses.dataclass
class Gcp:
    storage: GcsEmulator
    compute: GceImages
    project: str = PROJECT
    bucket: str = BUCKET

    def objects(self) -> list[dict]:
        return self.storage.objects(self.bucket)

    def images(self) -> dict[str, dict]:
        return {name: img for (p, name), img in self.compute.images.items() if p == self.project}


@pytest.fixture
def gcp(gcs_emulator: GcsEmulator, gce_standin: GceImages, monkeypatch: pytest.MonkeyPatch,
        tmp_path: pathlib.Path) -> Gcp:
    """A clean bucket and project, reachable by any Google client through the environment."""
    gcs_emulator.wipe()
    gcs_emulator.create_bucket(BUCKET)
    gce_standin.reset()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    monkeypatch.setenv("COMPUTE_EMULATOR_HOST", gce_standin.url)
    # never a developer's own Google credentials or project
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-credentials.json"))
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    return Gcp(gcs_emulator, gce_standin)
