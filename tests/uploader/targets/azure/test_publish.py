"""publish_azure against Azurite and the Compute Gallery stand-in: page blob contents, the image
definition and version as sent, replication, sharing, messages, the staging blob."""

import pytest

from shared.errors import TargetFailed
from shared.messages import AzureImagePublishedV1, UploadFailedV1
from standins.disk_images import data_extents
from tests.harness.azure import LOCATION, PUBLIC_NAME
from tests.uploader.targets.azure.conftest import NIGHTLY, make_config, make_image
from uploader.model import Clients
from uploader.targets.azure import publish_azure, vhd
from uploader.targets.azure.clients import make_clients
from uploader.targets.azure.settings import azure_config

pytestmark = pytest.mark.slow
AARCH64 = "Fedora-Cloud-Base-Azure-Rawhide-20261125.n.0.aarch64"
DEFINITION = "Fedora-Cloud-Rawhide-Nightly-x64"
VERSION = "0.20261125.0"


def publish(azure, image, messages, **cfg):
    return publish_azure(image, config=make_config(azure.gallery.url, **cfg), clients=Clients(),
                         emit=messages.append)


def nonzero_pages(raw_path):
    """The 512-byte pages of a raw disk that hold a non-zero byte, as merged (start, end)."""
    data = raw_path.read_bytes()
    runs, start = [], None
    for i in range(0, len(data), 512):
        zero = not any(data[i:i + 512])
        if not zero and start is None:
            start = i
        elif zero and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(data)))
    return runs


def test_two_arches_become_versions_replicated_to_every_region(azure, azure_vhd):
    messages = []
    for name in (NIGHTLY, AARCH64):
        assert publish(azure, make_image(azure_vhd, name), messages).ok
    versions = azure.versions()
    assert sorted(versions) == [f"Fedora-Cloud-Rawhide-Nightly-Arm64/{VERSION}",
                                f"{DEFINITION}/{VERSION}"]
    for key, version in versions.items():
        assert version["properties"]["provisioningState"] == "Succeeded"
        states = {s["region"]: s["state"] for s in version["_replication"]["summary"]}
        assert states == {"eastus": "Completed", "eastus2": "Completed",
                          "westeurope": "Completed"}, key
        assert version["tags"]["fedimg-sha256"] == azure_vhd.sha256
        assert version["tags"]["fedimg-channel"] == "nightly"
        assert version["properties"]["publishingProfile"]["endOfLifeDate"]
    definitions = azure.definitions()
    x64, arm = definitions[DEFINITION], definitions["Fedora-Cloud-Rawhide-Nightly-Arm64"]
    assert (x64["properties"]["architecture"], arm["properties"]["architecture"]) == (
        "x64", "Arm64")
    for d in (x64, arm):
        props = d["properties"]
        assert (props["osType"], props["osState"], props["hyperVGeneration"]) == (
            "Linux", "Generalized", "V2")
        features = {f["name"]: f["value"] for f in props["features"]}
        assert features["DiskControllerTypes"] == "SCSI, NVMe"
        assert features["SecurityType"] == "TrustedLaunchSupported"
    # community sharing was enabled once; the staging blobs are gone
    assert len(azure.gallery.calls("POST", r".*/share")) == 1
    assert azure.blobs() == []
    for m in messages:
        m.validate()
    assert [type(m) for m in messages] == [AzureImagePublishedV1, AzureImagePublishedV1]
    body = messages[0].body
    community = (f"/CommunityGalleries/{PUBLIC_NAME}/Images/{DEFINITION}/Versions/{VERSION}")
    assert body["community_resource_id"] == community
    assert body["regions"] == {r: community for r in ("eastus", "eastus2", "westeurope")}
    assert body["image_resource_id"].endswith(f"/images/{DEFINITION}/versions/{VERSION}")


def test_page_blob_holds_exactly_the_non_zero_pages_each_write_at_most_4_mib(azure, azure_vhd):
    cfg = azure_config(make_config(azure.gallery.url))
    ac = make_clients(cfg)
    ac.container.create_container()
    blob = ac.container.get_blob_client("disk.vhd")
    writes = []
    original = blob.upload_page

    def recorded(data, offset, length, **kw):
        writes.append((offset, length))
        return original(data, offset=offset, length=length, **kw)

    blob.upload_page = recorded
    size = vhd.upload(blob, azure_vhd.path, azure_vhd.sha256, workers=4,
                      run=__import__("subprocess").run)
    raw_size = azure_vhd.raw.stat().st_size
    assert size == raw_size + 512  # whole MiB of disk, then the footer
    ranges = [(r.start, r.end + 1) for r in blob.list_page_ranges()]
    expected = nonzero_pages(azure_vhd.raw) + [(raw_size, raw_size + 512)]
    assert _merge(ranges) == _merge(expected)
    assert all(length <= 4 << 20 and offset % 512 == 0 for offset, length in writes)
    assert sum(length for _, length in writes) == sum(e - s for s, e in expected)
    # the holes of the disk were never written
    assert sum(e - s for s, e in expected) < sum(length for _, length in
                                                 data_extents(azure_vhd.raw)) + 512 + 1
    props = blob.get_blob_properties()
    assert props.metadata == {"fedimg_sha256": azure_vhd.sha256, "fedimg_upload": "complete"}
    assert blob.download_blob().readall() == azure_vhd.raw.read_bytes() + _footer(blob, size)


def test_a_write_over_4_mib_is_refused_by_our_code():
    class Blob:
        def upload_page(self, *a, **kw):
            raise AssertionError("must not be sent")

    from shared.errors import CloudError

    with pytest.raises(CloudError, match="at most 4194304"):
        vhd.write_page(Blob(), 0, bytes((4 << 20) + 512))


def test_release_definition_and_private_sharing(azure, azure_vhd):
    messages = []
    image = make_image(azure_vhd, "Fedora-Cloud-Base-Azure-43-1.6.x86_64",
                       compose_id="Fedora-43-20251023.0")
    assert publish(azure, image, messages, sharing="private").ok
    assert list(azure.versions()) == ["Fedora-Cloud-43-x64/43.20251023.0"]
    version = azure.versions()["Fedora-Cloud-43-x64/43.20251023.0"]
    assert "endOfLifeDate" not in version["properties"]["publishingProfile"]
    assert azure.gallery.calls("POST", r".*/share") == []
    assert messages[0].body["community_resource_id"] is None
    assert set(messages[0].body["regions"].values()) == {messages[0].body["image_resource_id"]}


def test_a_region_that_fails_to_replicate_is_announced_and_the_version_kept_elsewhere(
        azure, azure_vhd):
    azure.gallery.fail_regions.add("westeurope")
    messages = []
    outcome = publish(azure, make_image(azure_vhd), messages)
    # usable where it replicated: cut to those regions (a PATCH), Succeeded, announced there
    assert (outcome.published, outcome.failed, outcome.retryable) == (
        [DEFINITION], ["westeurope"], ["westeurope"])
    version = azure.versions()[f"{DEFINITION}/{VERSION}"]
    assert version["properties"]["provisioningState"] == "Succeeded"
    assert {s["region"]: s["state"] for s in version["_replication"]["summary"]} == {
        "eastus": "Completed", "eastus2": "Completed"}
    (patch,) = azure.gallery.calls("PATCH", r".*/versions/[^/]+")
    assert [r["name"] for r in patch.body["properties"]["publishingProfile"]["targetRegions"]] \
        == ["eastus", "eastus2"]
    failure, published = messages
    assert isinstance(failure, UploadFailedV1) and isinstance(published, AzureImagePublishedV1)
    failure.validate()
    published.validate()
    assert failure.body["target"] == "azure" and failure.body["destination"] == "westeurope"
    assert failure.body["retryable"] is True
    assert sorted(published.body["regions"]) == ["eastus", "eastus2"]
    assert azure.blobs() == []

    # a redelivery once the region is back: the region is added, nothing uploaded or made again
    azure.gallery.fail_regions.clear()
    azure.gallery.forget_requests()
    again = []
    assert publish(azure, make_image(azure_vhd), again).ok
    assert azure.gallery.calls("PUT", r".*") == []
    (patch,) = azure.gallery.calls("PATCH", r".*/versions/[^/]+")
    assert [r["name"] for r in patch.body["properties"]["publishingProfile"]["targetRegions"]] \
        == ["eastus", "eastus2", "westeurope"]
    version = azure.versions()[f"{DEFINITION}/{VERSION}"]
    assert {s["region"]: s["state"] for s in version["_replication"]["summary"]} == {
        "eastus": "Completed", "eastus2": "Completed", "westeurope": "Completed"}
    (published,) = again
    assert sorted(published.body["regions"]) == ["eastus", "eastus2", "westeurope"]
    assert azure.blobs() == []


def test_a_region_that_fails_again_stays_announced_and_the_version_stays_where_it_was(
        azure, azure_vhd):
    azure.gallery.fail_regions.add("westeurope")
    publish(azure, make_image(azure_vhd), [])
    again = []
    outcome = publish(azure, make_image(azure_vhd), again)
    assert (outcome.failed, outcome.retryable) == (["westeurope"], ["westeurope"])
    version = azure.versions()[f"{DEFINITION}/{VERSION}"]
    assert version["properties"]["provisioningState"] == "Succeeded"
    assert sorted(s["region"] for s in version["_replication"]["summary"]) == [
        "eastus", "eastus2"]
    assert [type(m).__name__ for m in again] == ["UploadFailedV1", "AzureImagePublishedV1"]


def test_failed_replication_in_the_gallery_region_leaves_no_version_and_is_announced(
        azure, azure_vhd):
    azure.gallery.fail_regions.add(LOCATION)  # the version's own region: nothing to keep
    messages = []
    with pytest.raises(TargetFailed) as failed:
        publish(azure, make_image(azure_vhd), messages)
    assert failed.value.kind == "cloud"
    assert azure.versions() == {}
    (failure,) = messages
    assert isinstance(failure, UploadFailedV1)
    failure.validate()
    assert failure.body["target"] == "azure" and failure.body["destination"] == DEFINITION
    assert LOCATION in failure.body["error"]


def test_the_version_targets_the_gallery_region_first(azure, azure_vhd):
    publish(azure, make_image(azure_vhd), [], regions=["westeurope"])
    (put,) = azure.gallery.calls("PUT", r".*/versions/[^/]+")
    regions = [r["name"] for r in put.body["properties"]["publishingProfile"]["targetRegions"]]
    assert regions == [LOCATION, "westeurope"]
    source = put.body["properties"]["storageProfile"]["osDiskImage"]["source"]
    assert source["uri"].endswith(f"/fedimg-staging/{NIGHTLY}.vhd")
    assert source["storageAccountId"].endswith("/storageAccounts/devstoreaccount1")


def _merge(ranges):
    out = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _footer(blob, size):
    return blob.download_blob(offset=size - 512, length=512).readall()
