"""publish_gcp against the storage emulator and the GCE images stand-in: images in their
families, labels, features, public binding, deprecation, messages and the staging object."""

import base64

import google_crc32c
import pytest

from shared.errors import TargetFailed
from shared.messages import GcpImagePublishedV1, UploadFailedV1
from tests.uploader.targets.gcp.conftest import NIGHTLY, make_config, make_image
from uploader.model import Clients
from uploader.targets.gcp import publish_gcp, staging
from uploader.targets.gcp.clients import make_clients

pytestmark = pytest.mark.slow
AARCH64 = "Fedora-Cloud-Base-GCE-Rawhide-20261125.n.0.aarch64"
IMAGE = "fedora-cloud-base-gce-rawhide-20261125-n-0-x86-64"


def publish(image, messages, **cfg):
    return publish_gcp(image, config=make_config(**cfg), clients=Clients(), emit=messages.append)


def crc32c_of(path):
    return base64.b64encode(google_crc32c.value(path.read_bytes()).to_bytes(4, "big")).decode()


def test_two_arches_become_images_in_their_families(gcp, gce_archive):
    messages = []
    for name in (NIGHTLY, AARCH64):
        outcome = publish(make_image(gce_archive, name), messages)
        assert outcome.ok
    images = gcp.images()
    x86, arm = images[IMAGE], images["fedora-cloud-base-gce-rawhide-20261125-n-0-aarch64"]
    assert (x86["family"], arm["family"]) == ("fedora-cloud-rawhide-nightly",
                                              "fedora-cloud-rawhide-nightly-arm64")
    assert x86["status"] == arm["status"] == "READY"
    assert (x86["architecture"], arm["architecture"]) == ("X86_64", "ARM64")
    features = {n: {f["type"] for f in i["guestOsFeatures"]} for n, i in images.items()}
    assert features[IMAGE] >= {"UEFI_COMPATIBLE", "GVNIC", "SEV_CAPABLE"}
    assert "SEV_CAPABLE" not in features[arm["name"]] and "GVNIC" in features[arm["name"]]
    assert x86["labels"]["fedimg-sha256"] == gce_archive.sha256[:63]
    assert x86["labels"]["fedimg-channel"] == "nightly" and x86["storageLocations"] == ["us"]
    # each image was read from its own staging object, which is gone afterwards
    assert x86["rawDisk"]["source"] == (f"https://storage.googleapis.com/{gcp.bucket}/"
                                        f"fedimg-staging/{IMAGE}.tar.gz")
    assert gcp.objects() == []
    # public: the binding GCE's public images carry, set once per image
    sets = gcp.compute.calls("POST", r".*/images/[^/]+/setIamPolicy")
    assert len(sets) == 2
    assert sets[0].body["policy"]["bindings"] == [
        {"role": "roles/compute.imageUser", "members": ["allAuthenticatedUsers"]}]
    assert [type(m) for m in messages] == [GcpImagePublishedV1, GcpImagePublishedV1]
    for m in messages:
        m.validate()
    assert messages[0].body["image_name"] == IMAGE
    assert messages[0].body["family"] == "fedora-cloud-rawhide-nightly"
    assert messages[0].body["image_url"] == x86["selfLink"]
    assert messages[1].topic == "fedimg.image.published.v1.gcp.nightly.Cloud_Base.Rawhide.aarch64"


def test_upload_is_resumable_and_its_crc32c_is_what_the_emulator_stored(gcp, gce_archive):
    gc = make_clients(_gcp())
    url = staging.ensure_object(gc.storage, _gcp(), "fedimg-staging/x.tar.gz", gce_archive.path,
                                gce_archive.sha256)
    (obj,) = gcp.objects()
    assert url.endswith("/fedimg-staging/x.tar.gz")
    assert int(obj["size"]) == gce_archive.path.stat().st_size
    assert obj["crc32c"] == crc32c_of(gce_archive.path)
    assert obj["metadata"]["fedimg-sha256"] == gce_archive.sha256
    # the same bytes again: found by metadata and checksum, not uploaded twice
    generation = obj["generation"]
    staging.ensure_object(gc.storage, _gcp(), "fedimg-staging/x.tar.gz", gce_archive.path,
                          gce_archive.sha256)
    assert gcp.objects()[0]["generation"] == generation


def test_storage_refuses_bytes_that_do_not_match_the_announced_crc32c(gcp, gce_archive,
                                                                      other_archive):
    # what ensure_object relies on: the crc32c sent when the resumable upload starts is checked
    # against the bytes that arrived, and a mismatch leaves no object
    gc = make_clients(_gcp())
    blob = gc.storage.bucket(gcp.bucket).blob("fedimg-staging/bad.tar.gz", chunk_size=1 << 20)
    blob.crc32c = crc32c_of(other_archive.path)
    with pytest.raises(Exception, match="(?i)crc32c"):
        blob.upload_from_filename(str(gce_archive.path), if_generation_match=0)
    assert gcp.objects() == []


def test_newer_image_deprecates_older_and_a_redelivered_older_one_does_not(gcp, gce_archive,
                                                                          other_archive):
    older = make_image(gce_archive, "Fedora-Cloud-Base-GCE-Rawhide-20261124.n.0.x86_64")
    newer = make_image(other_archive, NIGHTLY)
    messages = []
    publish(older, messages)
    publish(newer, messages)
    images = gcp.images()
    old = images["fedora-cloud-base-gce-rawhide-20261124-n-0-x86-64"]
    assert old["deprecated"] == {"state": "DEPRECATED", "replacement": images[IMAGE]["selfLink"]}
    assert "deprecated" not in images[IMAGE]
    assert messages[-1].body["deprecated"] == [old["name"]]
    publish(older, messages)  # redelivery of the older image
    assert "deprecated" not in gcp.images()[IMAGE]
    assert len(gcp.compute.calls("POST", r".*/deprecate")) == 1


def test_release_and_nightly_families_are_apart(gcp, gce_archive):
    messages = []
    publish(make_image(gce_archive, "Fedora-Cloud-Base-GCE-43-1.6.x86_64",
                       compose_id="Fedora-43-20251023.0"), messages)
    publish(make_image(gce_archive, NIGHTLY), messages)
    families = {i["name"]: i["family"] for i in gcp.images().values()}
    assert families == {"fedora-cloud-base-gce-43-1-6-x86-64": "fedora-cloud-43",
                        IMAGE: "fedora-cloud-rawhide-nightly"}
    assert gcp.compute.calls("POST", r".*/deprecate") == []


def test_not_public_when_configured_so(gcp, gce_archive):
    messages = []
    publish(make_image(gce_archive), messages, public=False)
    assert gcp.compute.calls("POST", r".*/setIamPolicy") == []
    assert messages[0].body["public"] is False


def test_a_failed_insert_leaves_no_image_and_is_announced(gcp, gce_archive):
    gcp.compute.fail_insert[IMAGE] = "Invalid image file: disk.raw is not a disk"
    messages = []
    with pytest.raises(TargetFailed) as failed:
        publish(make_image(gce_archive), messages)
    assert failed.value.kind == "cloud" and not failed.value.retryable
    assert gcp.images() == {}
    (failure,) = messages
    assert isinstance(failure, UploadFailedV1)
    failure.validate()
    assert failure.body["target"] == "gcp"
    assert failure.body["destination"] == "fedora-cloud-rawhide-nightly"
    assert "disk.raw is not a disk" in failure.body["error"]


def test_an_archive_gce_cannot_read_fails_the_image(gcp, tmp_path, gce_archive):
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"not a tar at all" * 1000)
    from shared.files import sha256_file
    from tests.uploader.targets.gcp.conftest import Archive

    with pytest.raises(TargetFailed, match="gzip"):
        publish(make_image(Archive(bogus, sha256_file(bogus))), [])
    assert gcp.images() == {}


def _gcp():
    from uploader.targets.gcp.settings import gcp_config

    return gcp_config(make_config())
