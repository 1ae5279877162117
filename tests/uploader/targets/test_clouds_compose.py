"""A real Fedora 43 compose's Azure and GCE images, two arches each, through intake and the
pipeline: served by the Koji stand-in's file server, fetched and verified (size, sha256 from
images.json), handed to the azure and gcp targets as fetched files. They end as gallery image
versions replicated to every configured region and GCE images in their families; a redelivery
of the compose adds nothing."""

import pytest

from shared.config import parse_config
from shared.messages import AzureImagePublishedV1, GcpImagePublishedV1, ImageAcceptedV1
from standins.cloud_archives import make_gce_archive, make_vhdfixed_xz
from standins.disk_images import MiB, make_disk_image
from tests.harness.azure import LOCATION
from tests.harness.gcp import BUCKET, PROJECT
from tests.uploader.conftest import COMPOSE_43, compose_sample, config_dict, serve_compose
from uploader.intake.route import Request, find_images
from uploader.pipeline import make_clients, process_images
from uploader.targets import get_handlers

pytestmark = pytest.mark.slow
COMPOSE = "Fedora-43-20251023.0"
FILES = {
    "Cloud/x86_64/images/Fedora-Cloud-Base-Azure-43-1.6.x86_64.vhdfixed.xz": "vhd",
    "Cloud/aarch64/images/Fedora-Cloud-Base-Azure-43-1.6.aarch64.vhdfixed.xz": "vhd",
    "Cloud/x86_64/images/Fedora-Cloud-Base-GCE-43-1.6.x86_64.tar.gz": "gce",
    "Cloud/aarch64/images/Fedora-Cloud-Base-GCE-43-1.6.aarch64.tar.gz": "gce",
}


@pytest.fixture(scope="module")
def cloud_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("compose-clouds")
    raw = make_disk_image(d / "disk.raw", size=16 * MiB, data_mib=3).path
    return {"vhd": make_vhdfixed_xz(raw, d / "disk.vhdfixed.xz"),
            "gce": make_gce_archive(raw, d / "disk.tar.gz")}


def test_compose_with_azure_and_gce_images_of_two_arches(koji_hub, samples_dir, work_dir,
                                                         cloud_files, azure, gcp):
    images = compose_sample(samples_dir, COMPOSE_43)
    serve_compose(koji_hub, images, f"43/{COMPOSE}",
                  files={path: cloud_files[kind] for path, kind in FILES.items()})
    raw = config_dict(koji_hub, work_dir, uploader={
        "targets": ["azure", "gcp"], "image_types": ["vhd-compressed", "tar-gz"]},
        azure={"subscription_id": azure.subscription, "resource_group": azure.resource_group,
               "gallery": azure.name, "storage_account": "devstoreaccount1",
               "regions": ["eastus2", "westeurope"], "management_endpoint": azure.gallery.url,
               "operation_timeout": 60, "timeout": 30},
        gcp={"project": PROJECT, "bucket": BUCKET, "operation_timeout": 60, "timeout": 30,
             "upload_chunk_mib": 1})
    config = parse_config(raw, "test.toml")
    clients = make_clients(config, config.uploader.targets)
    handlers = get_handlers(config.uploader.targets)

    def run():
        sources = find_images(Request("compose", COMPOSE), config=config, clients=clients)
        messages = []
        reports = process_images(sources, config=config, clients=clients,
                                 emit=messages.append, handlers=handlers)
        return sources, reports, messages

    sources, reports, messages = run()
    assert sorted((s.identity.arch, s.targets) for s in sources) == [
        ("aarch64", ("azure",)), ("aarch64", ("gcp",)), ("x86_64", ("azure",)),
        ("x86_64", ("gcp",))]
    assert all(r.ok for r in reports), [r.summary() for r in reports]
    for m in messages:
        m.validate()
    assert sum(isinstance(m, ImageAcceptedV1) for m in messages) == 4

    versions = azure.versions()
    assert sorted(versions) == ["Fedora-Cloud-43-Arm64/43.20251023.0",
                                "Fedora-Cloud-43-x64/43.20251023.0"]
    for version in versions.values():
        regions = {s["region"]: s["state"] for s in version["_replication"]["summary"]}
        assert regions == {LOCATION: "Completed", "eastus2": "Completed",
                           "westeurope": "Completed"}
    families = {i["name"]: i["family"] for i in gcp.images().values()}
    assert families == {"fedora-cloud-base-gce-43-1-6-x86-64": "fedora-cloud-43",
                        "fedora-cloud-base-gce-43-1-6-aarch64": "fedora-cloud-43-arm64"}
    assert azure.blobs() == [] and gcp.objects() == []
    published = [m for m in messages if isinstance(m, AzureImagePublishedV1 | GcpImagePublishedV1)]
    assert sorted(m.body["name"] for m in published) == sorted(
        s.identity.name for s in sources)

    # redelivery of the compose: nothing new in either cloud, the same announcements again
    azure_writes = len(azure.gallery.calls("PUT", r".*"))
    gce_writes = len(gcp.compute.calls("POST", r".*/global/images"))
    _, reports, again = run()
    assert all(r.ok for r in reports)
    assert len(azure.gallery.calls("PUT", r".*")) == azure_writes
    assert len(gcp.compute.calls("POST", r".*/global/images")) == gce_writes
    assert sorted(azure.versions()) == sorted(versions) and len(gcp.images()) == 2
    assert sorted(m.body["name"] for m in again if isinstance(
        m, AzureImagePublishedV1 | GcpImagePublishedV1)) == sorted(
        m.body["name"] for m in published)
