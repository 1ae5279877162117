"""Redeliveries and crashes: the next run finds the version it made (by name and sha256 tag) and
adds nothing; a run killed at any point is finished by the next one, which leaves no staging
blob and no half version behind."""

import os
import signal
import subprocess
import sys

import pytest

from shared.errors import TargetFailed
from shared.messages import AzureImagePublishedV1
from standins import REPO_ROOT
from tests.uploader.targets.azure.conftest import Vhd, make_config, make_image
from tests.uploader.targets.azure.test_publish import DEFINITION, VERSION
from uploader.model import Clients
from uploader.targets.azure import publish_azure

pytestmark = pytest.mark.slow
KEY = f"{DEFINITION}/{VERSION}"


def publish(azure, image, messages):
    return publish_azure(image, config=make_config(azure.gallery.url), clients=Clients(),
                         emit=messages.append)


def writes(azure):
    return [(r.method, r.path) for r in azure.gallery.requests
            if r.method in ("PUT", "DELETE", "POST")]


def test_redelivery_uploads_and_creates_nothing_and_announces_again(azure, azure_vhd, tmp_path):
    first = []
    publish(azure, make_image(azure_vhd), first)
    before = writes(azure)
    version = azure.versions()[KEY]
    again = []
    gone = Vhd(tmp_path / "deleted.vhdfixed.xz", azure_vhd.sha256, azure_vhd.raw)
    assert publish(azure, make_image(gone), again).ok  # the file is not even read
    assert writes(azure) == before
    assert azure.versions() == {KEY: version}
    assert azure.blobs() == []
    assert [type(m) for m in again] == [AzureImagePublishedV1]
    assert again[0].body == first[0].body


def test_a_version_of_that_name_from_other_bytes_is_never_replaced(azure, azure_vhd):
    publish(azure, make_image(azure_vhd), [])
    other = Vhd(azure_vhd.path, "cd" * 32, azure_vhd.raw)
    messages = []
    with pytest.raises(TargetFailed) as failed:
        publish(azure, make_image(other), messages)
    assert not failed.value.retryable
    assert "delete it to publish" in messages[0].body["error"]
    assert azure.versions()[KEY]["tags"]["fedimg-sha256"] == azure_vhd.sha256


def crash(azure, vhd, method, pattern, n):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.uploader.targets.azure.crash_run", str(vhd.path),
         vhd.sha256, azure.gallery.url, method, pattern, str(n)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    assert "FINISHED" not in proc.stdout


@pytest.mark.parametrize("method, pattern, n", [
    ("PUT", r"comp=page", 3),                       # mid-upload: two page writes sent
    ("PUT", r"comp=metadata", 1),                   # all pages in, not marked complete
    ("GET", r"/capsOperations/", 1),                # version PUT accepted, never waited for
    ("DELETE", r"fedimg-staging/", 1),              # finished but the staging blob is left
])
def test_killed_at_any_point_then_rerun_leaves_one_version_and_no_blob(azure, azure_vhd,
                                                                      method, pattern, n):
    crash(azure, azure_vhd, method, pattern, n)
    if pattern == r"comp=page":
        (left,) = azure.blobs()
        assert left.metadata["fedimg_upload"] == "started"
    messages = []
    assert publish(azure, make_image(azure_vhd), messages).ok
    (key,) = azure.versions()
    assert key == KEY
    assert azure.versions()[KEY]["properties"]["provisioningState"] == "Succeeded"
    assert azure.blobs() == []
    assert [type(m) for m in messages] == [AzureImagePublishedV1]
    assert len(azure.gallery.calls("PUT", r".*/versions/[^/]+")) == 1
