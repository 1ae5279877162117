"""Redeliveries and crashes: the next run finds the image it made (by name and sha256 label) and
adds nothing; a run killed at any point is finished by the next one, which leaves no staging
object and no half image behind."""

import os
import signal
import subprocess
import sys

import pytest

from shared.errors import TargetFailed
from shared.messages import GcpImagePublishedV1
from standins import REPO_ROOT
from tests.uploader.targets.gcp.conftest import Archive, make_config, make_image
from tests.uploader.targets.gcp.test_publish import IMAGE
from uploader.model import Clients
from uploader.targets.gcp import publish_gcp

pytestmark = pytest.mark.slow


def publish(image, messages):
    return publish_gcp(image, config=make_config(), clients=Clients(), emit=messages.append)


def writes(gcp):
    return [(r.method, r.path) for r in gcp.compute.requests if r.method != "GET"
            and not r.path.endswith("/wait")]


def test_redelivery_uploads_and_creates_nothing_and_announces_again(gcp, gce_archive, tmp_path):
    first = []
    publish(make_image(gce_archive), first)
    before = writes(gcp)
    image_before = dict(gcp.images()[IMAGE])
    # the archive is not even read again: a path that does not exist proves it
    again = []
    gone = Archive(tmp_path / "deleted.tar.gz", gce_archive.sha256)
    outcome = publish(make_image(gone), again)
    assert outcome.ok
    assert writes(gcp) == before
    assert gcp.images() == {IMAGE: image_before}
    assert gcp.objects() == []
    assert [type(m) for m in again] == [GcpImagePublishedV1]
    assert again[0].body == first[0].body


def test_an_image_of_that_name_from_other_bytes_is_never_replaced(gcp, gce_archive,
                                                                 other_archive):
    publish(make_image(other_archive), [])
    kept = dict(gcp.images()[IMAGE])
    messages = []
    with pytest.raises(TargetFailed) as failed:
        publish(make_image(gce_archive), messages)
    assert not failed.value.retryable and failed.value.kind == "cloud"
    assert "delete it to publish" in messages[0].body["error"]
    assert gcp.images() == {IMAGE: kept}
    assert gcp.objects() == []


def test_a_failed_image_is_deleted_and_made_again(gcp, gce_archive):
    gcp.compute.fail_insert[IMAGE] = "transient backend trouble"
    with pytest.raises(TargetFailed):
        publish(make_image(gce_archive), [])
    assert gcp.images() == {}
    assert len(gcp.objects()) == 1  # kept for the rerun: same bytes, no second upload
    messages = []
    assert publish(make_image(gce_archive), messages).ok
    assert gcp.images()[IMAGE]["status"] == "READY"
    assert gcp.objects() == []
    assert len(gcp.compute.calls("POST", r".*/global/images")) == 2


def crash(archive, method, pattern, n, when):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.uploader.targets.gcp.crash_run", str(archive.path),
         archive.sha256, method, pattern, str(n), when],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    assert "FINISHED" not in proc.stdout
    return proc.stdout


@pytest.mark.parametrize("method, pattern, n, when", [
    ("PUT", r"upload_id=", 3, "before"),             # mid-upload: chunks 1-2 of many sent
    ("POST", r"/global/images\?|/global/images$", 1, "after"),  # inserted, never waited for
    ("POST", r"/setIamPolicy", 1, "before"),         # READY, not public yet
    ("DELETE", r"/o/", 1, "before"),                 # finished but the staging object is left
])
def test_killed_at_any_point_then_rerun_leaves_one_image_and_no_object(gcp, gce_archive, method,
                                                                      pattern, n, when):
    crash(gce_archive, method, pattern, n, when)
    if method == "PUT":  # a cut-off resumable upload makes no object
        assert gcp.objects() == [] and gcp.images() == {}
    messages = []
    assert publish(make_image(gce_archive), messages).ok
    (image,) = gcp.images().values()
    assert image["name"] == IMAGE and image["status"] == "READY"
    assert gcp.compute.policies[(gcp.project, IMAGE)]["bindings"][0]["members"] == [
        "allAuthenticatedUsers"]
    assert gcp.objects() == []
    assert len(gcp.compute.calls("POST", r".*/global/images")) == 1
    assert [type(m) for m in messages] == [GcpImagePublishedV1]
