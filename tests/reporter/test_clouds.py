"""Azure and GCE in the report: fedimg's own messages and fedora_image_uploader's real bodies
fold into one register per image, and the site shows the Azure resource id per region and the
GCE image name and family (escaped: history is attacker-influenced text)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import pathlib

import pytest

from reporter import site
from reporter.atomic_dir import write_tree
from reporter.fold import fold, image_records
from reporter.outputs import history_block
from shared.messages import AzureImagePublishedV1, GcpImagePublishedV1
from tests.reporter.conftest import EVIL_SCRIPT
from tests.reporter.histories import PROD, as_rows

SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "data" / "samples"
REAL = pathlib.Path(__file__).resolve().parents[1] / "data" / "real" / "messages"
T0 = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
FIU_AZURE = "Fedora-Cloud-Base-Azure-40-20240501.n.0.x86_64"
FIU_GCE = "Fedora-Cloud-Base-GCE-40-20240414.0.x86_64"


def _real_fiu(kind: str) -> dict:
    """The fedora_image_uploader record of that kind from the real corpus (topic + body)."""
    records = json.loads((REAL / "fiu-messages-1.2.0-tests.json").read_text())["records"]
    (record,) = [r["message"] for r in records
                 if r["message"]["topic"].startswith(f"fedora_image_uploader.published.v1.{kind}")]
    return record


def _specs() -> list[tuple]:
    specs = []
    for i, kind in enumerate(("azure", "gcp")):
        msg = _real_fiu(kind)
        specs.append((PROD + msg["topic"], msg["body"], T0 + dt.timedelta(seconds=i)))
    for i, cls in enumerate((AzureImagePublishedV1, GcpImagePublishedV1)):
        body = copy.deepcopy(cls.example)
        specs.append((PROD + cls.from_body(body).topic, body, T0 + dt.timedelta(seconds=10 + i)))
    return specs


@pytest.fixture(scope="module")
def records() -> dict[str, dict]:
    return {r["name"]: r for r in image_records(fold(as_rows(_specs())))}


def test_fedora_image_uploader_azure_body_gives_the_resource_id_in_each_region(records):
    azure = records[FIU_AZURE]["azure"]
    body = _real_fiu("azure")["body"]
    assert azure["image_definition"] == "Fedora-Cloud-40-x64"
    assert azure["image_version"] == "40.20240501.0"
    assert azure["regions"] == {r: body["image_resource_id"] for r in body["regions"]}


def test_fedora_image_uploader_gcp_body_gives_image_and_family(records):
    gcp = records[FIU_GCE]["gcp"]
    assert (gcp["image_name"], gcp["family"]) == ("fedora-cloud-40-1-14-x86-64",
                                                  "fedora-cloud-40")
    assert gcp["storage_locations"] == ["us"]


def test_our_messages_fill_the_same_registers(records):
    azure = records[AzureImagePublishedV1.example["name"]]["azure"]
    assert azure["regions"] == AzureImagePublishedV1.example["regions"]
    assert azure["image_version"] == AzureImagePublishedV1.example["image_version_name"]
    gcp = records[GcpImagePublishedV1.example["name"]]["gcp"]
    assert gcp["image_name"] == GcpImagePublishedV1.example["image_name"]
    assert gcp["family"] == "fedora-cloud-rawhide-nightly"
    assert gcp["project"] == "fedora-cloud"
    assert records[GcpImagePublishedV1.example["name"]]["channel"] == "nightly"


def test_a_malformed_region_map_is_unreadable_not_a_crash():
    body = {**copy.deepcopy(AzureImagePublishedV1.example), "regions": ["eastus"]}
    state = fold(as_rows([(PROD + "fedimg.image.published.v1.azure.nightly.Cloud_Base.Rawhide."
                           "x86_64", body, T0)]))
    assert state.skipped == 1 and not state.images


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, records) -> pathlib.Path:
    images = copy.deepcopy(list(records.values()))
    for img in images:  # hostile history: shown as text, never run
        if img["name"] == FIU_AZURE:
            img["azure"]["regions"]["centralus"] = EVIL_SCRIPT
    state = fold(as_rows(_specs()))
    out = tmp_path_factory.mktemp("site")
    write_tree(out, site.render(sorted(images, key=lambda i: i["name"]),
                                history_block(state, "https://dg.example.org"),
                                "2026-11-25T12:00:00Z"))
    return out


def test_release_page_lists_azure_regions_and_gce_family(rendered):
    text = (rendered / "release-40.html").read_text()
    rid = _real_fiu("azure")["body"]["image_resource_id"]
    for region in ("eastus", "eastus2"):
        assert f'<tr data-region="{region}"><td>{region}</td><td><code class="resource-id">' \
               f'{rid}</code>' in text
    assert 'data-copy="fedora-cloud-40-1-14-x86-64"' in text
    assert '<code class="gce-family">fedora-cloud-40</code>' in text
    assert EVIL_SCRIPT not in text and "&lt;script&gt;" in text


def test_rawhide_page_shows_our_azure_regions_and_gce_image(rendered):
    text = (rendered / "release-Rawhide.html").read_text()
    for region, rid in AzureImagePublishedV1.example["regions"].items():
        assert f'<tr data-region="{region}"><td>{region}</td><td><code class="resource-id">' \
               f'{rid}</code>' in text
    assert f'data-copy="{GcpImagePublishedV1.example["image_name"]}"' in text
    assert '<code class="gce-family">fedora-cloud-rawhide-nightly</code>' in text


def test_a_later_azure_or_gce_success_covers_the_failures_it_fixed():
    """A region that failed to replicate (destination = the region), then a redelivery that
    replicated there; a whole-image failure (destination = definition or GCE image) followed by
    a success; a region still missing after the last success stays a failure."""
    azure = copy.deepcopy(AzureImagePublishedV1.example)
    gce = copy.deepcopy(GcpImagePublishedV1.example)
    partial = {**azure, "regions": {r: v for r, v in azure["regions"].items() if r == "eastus"}}

    def failed(body, target, destination):
        keep = ("name", "release", "subvariant", "arch", "channel", "source")
        return {**{k: body[k] for k in keep if k in body}, "target": target,
                "destination": destination, "error": "replication failed", "kind": "cloud",
                "retryable": True}

    def at(seconds):
        return T0 + dt.timedelta(seconds=seconds)

    topic = {"azure": PROD + AzureImagePublishedV1.from_body(azure).topic,
             "gcp": PROD + GcpImagePublishedV1.from_body(gce).topic}
    fail_topic = PROD + "fedimg.image.failed.v1.azure.westeurope"
    specs = [(fail_topic, failed(azure, "azure", "westeurope"), at(1)),
             (fail_topic, failed(azure, "azure", "northeurope"), at(1)),
             (topic["azure"], partial, at(2)),  # the first run: eastus only
             (topic["azure"], azure, at(3)),  # the redelivery: westeurope too
             (PROD + "fedimg.image.failed.v1.gcp.x", failed(gce, "gcp", gce["family"]), at(4)),
             (topic["gcp"], gce, at(5))]
    records = {r["name"]: r for r in image_records(fold(as_rows(specs)))}
    assert [f["destination"] for f in records[azure["name"]]["failures"]] == ["northeurope"]
    assert records[gce["name"]]["failures"] == []
