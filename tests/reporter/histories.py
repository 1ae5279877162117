"""A mixed history of all three families, built from the real sample shapes (tests/data/samples).

``mixed_history(samples_dir)`` returns (specs, expected): specs are (topic, body, sent_at) tuples
ready for ``datagrepper.publish_and_wait`` (or ``as_rows`` for in-memory tests); ``expected``
describes the images the report must show. Every body is a sample file's body, changed only
where the scenario needs it (a second region, an arm64 build, a promotion).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import pathlib
import re
import uuid
from typing import Any

from shared.messages import (
    AwsImagePublishedV1,
    AwsRegionPublishedV1,
    ContainerPublishedV1,
    DownloadPublishedV1,
    ImageAcceptedV1,
    ImagePromotedV1,
    OpenStackImagePublishedV1,
    QeResultV1,
    UploadFailedV1,
)

PROD = "org.fedoraproject.prod."
T0 = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=dt.UTC)


def _sample(samples_dir: pathlib.Path, prefix: str) -> Any:
    [path] = sorted(samples_dir.glob(prefix + "*"))
    return json.loads(path.read_text())


def _ours(cls, body: dict) -> tuple[str, dict]:
    msg = cls.from_body(body)
    return PROD + msg.topic, body


OUR_NAME = "Fedora-Cloud-Base-AmazonEC2.x86_64-41-1.4"
OUR_IDENTITY = {"name": OUR_NAME, "release": "41", "subvariant": "Cloud_Base",
                "arch": "x86_64", "channel": "candidate", "compose_id": "Fedora-41-20241027.0",
                "koji_task_id": None, "koji_build_id": None, "agent": "fedimg"}
NIGHTLY_NAME = "Fedora-Cloud-Base-AmazonEC2-Rawhide-20250601.n.0.aarch64"
NIGHTLY_IDENTITY = {"name": NIGHTLY_NAME, "release": "Rawhide", "subvariant": "Cloud_Base",
                    "arch": "aarch64", "channel": "nightly", "compose_id": None,
                    "koji_task_id": 131000001, "koji_build_id": None, "agent": "fedimg"}
GENERIC_NAME = "Fedora-Cloud-Base-Generic-41-1.4.x86_64"
GENERIC_IDENTITY = {**OUR_IDENTITY, "name": GENERIC_NAME}
GLANCE_A = "9c1e2a47-3f0b-4d6e-8a51-2b7f0c9d4e13"
GLANCE_B = "0f4d2c8e-6a1b-4e3f-9d5c-7b2a1e0c8f46"
CONTAINER = "Fedora-Container-Base-Generic-43-1.6"
CONTAINER_IDENTITY = {"release": "43", "subvariant": "Container_Base", "channel": "candidate",
                      "compose_id": "Fedora-43-20251023.0", "koji_task_id": None,
                      "koji_build_id": None, "agent": "fedimg"}
QUAY = "quay.io/fedora"
DIGEST_X86 = "sha256:60caeb1c917f47dcfea6280effe120704aba0e635e3a76c140f8a1a0bdc024d3"
DIGEST_ARM = "sha256:836b89a45893aca059a28d0a8f96dbbde873dfad3a72cc82ffd7186481d6120d"
DIGEST_LIST = "sha256:f27d6203d7efe53dec89f8653cf4f8e981ccf49d4ce84238698e0aa0daf5221f"
SHA_Q = "846574c8a97cd2d8dc1f231062d73107cc85cbbbda56335e264a46e3a6c8ab2f"
SHA_R = "7dbdfb789a1c4ad9dbe3a600ad50df04c55a7e59cc7ffbef8a860d410f073a97"


def mixed_history(samples_dir: pathlib.Path) -> tuple[list[tuple], dict[str, dict]]:
    specs: list[tuple] = []
    t = [0]

    def add(topic: str, body: Any) -> None:
        t[0] += 7
        specs.append((topic, body, T0 + dt.timedelta(seconds=t[0])))

    # ---- legacy fedimg (fedmsg era shapes) ------------------------------------------------
    up_started = _sample(samples_dir, "fedimg-image.upload-started")
    up_done = _sample(samples_dir, "fedimg-image.upload-completed")
    copy_ = _sample(samples_dir, "fedimg-image.copy")
    pub = _sample(samples_dir, "fedimg-image.publish")
    legacy_topic = "org.fedoraproject.prod.fedimg.image."
    add(legacy_topic + "upload", up_started["msg"])
    add(legacy_topic + "upload", up_done["msg"])
    # the same Cloud_Base image copied on to another region, destination in the "EC2 (...)" form
    cloud_copy = copy.deepcopy(copy_["msg"])
    cloud_copy.update(image_name=up_done["msg"]["image_name"], destination="EC2 (us-west-2)",
                      compose_id="Fedora-Atomic-24-20160710.0")
    cloud_copy["extra"]["id"] = "ami-0c0ffee1"
    add(legacy_topic + "copy", cloud_copy)
    failed = copy.deepcopy(up_started["msg"])
    failed.update(status="failed", destination="EC2-ap-northeast-1")
    add(legacy_topic + "upload", failed)
    add(legacy_topic + "copy", copy_["msg"])  # the Atomic image, us-west-2
    add(legacy_topic + "publish", pub["msg"])  # the Atomic image, eu-west-2

    # ---- fedora_image_uploader ------------------------------------------------------------
    fiu = "org.fedoraproject.prod.fedora_image_uploader.published.v1."
    aws = _sample(samples_dir, "fedora_image_uploader.published.v1.aws")
    add(fiu + "aws", aws)
    arm = {**copy.deepcopy(aws), "architecture": "arm64",
           "regions": {"us-east-1": "ami-0aa0bb0cc0dd0ee0f"}}
    add(fiu + "aws", arm)
    add(fiu + "azure", _sample(samples_dir, "fedora_image_uploader.published.v1.azure"))
    gcp = _sample(samples_dir, "fedora_image_uploader.published.v1.gcp")
    add(fiu + "gcp.rc.Cloud_Base.x86_64", gcp["body"])
    add(fiu + "container", _sample(samples_dir, "fedora_image_uploader.published.v1.container"))

    # ---- ours -----------------------------------------------------------------------------
    add(*_ours(ImageAcceptedV1, {**OUR_IDENTITY, "targets": ["aws", "downloads"],
                                 "source_url": "https://kojipkgs.example.org/x.raw.xz",
                                 "size": 100, "sha256": SHA_R}))
    for region, ami in (("us-east-1", "ami-0a1a3731a749a16db"),
                        ("eu-west-1", "ami-096b0e83fe32a74bb")):
        add(*_ours(AwsRegionPublishedV1, {**OUR_IDENTITY, "region": region, "ami": ami,
                                          "snapshot_id": None, "public": True,
                                          "ami_name": OUR_NAME}))
    add(*_ours(UploadFailedV1, {**OUR_IDENTITY, "target": "aws",
                                "destination": "ap-southeast-7", "error_kind": "timeout",
                                "error": "copy did not finish", "retryable": True}))
    add(*_ours(AwsImagePublishedV1, {**OUR_IDENTITY, "regions": {
        "us-east-1": "ami-0a1a3731a749a16db", "eu-west-1": "ami-096b0e83fe32a74bb"},
        "failed_regions": ["ap-southeast-7"]}))
    for fmt, size, sha in (("qcow2", 583335936, SHA_Q), ("raw.tar.xz", 501538584, SHA_R)):
        add(*_ours(DownloadPublishedV1, {
            **OUR_IDENTITY, "format": fmt,
            "url": f"https://dl.example.org/pub/alt/cloud/41/{OUR_NAME}.{fmt}",
            "size": size, "sha256": sha, "checksum_url": None}))
    add(*_ours(QeResultV1, {k: OUR_IDENTITY[k] for k in
                            ("name", "release", "subvariant", "arch", "channel")}
               | {"result": "passed", "test_suite": "openqa-cloud", "url": None,
                  "agent": "openqa", "note": None}))
    add(*_ours(ImagePromotedV1, {k: OUR_IDENTITY[k] for k in
                                 ("name", "release", "subvariant", "arch")}
               | {"channel": "release", "official": True, "agent": "releng",
                  "note": "Fedora 41 GA"}))
    add(*_ours(AwsRegionPublishedV1, {**NIGHTLY_IDENTITY, "region": "us-east-1",
                                      "ami": "ami-0123456789abcdef0", "snapshot_id": None,
                                      "public": True, "ami_name": NIGHTLY_NAME}))

    # the Generic qcow2 in two OpenStack clouds: the first one failed once, then worked
    glance = {"image_name": GENERIC_NAME, "visibility": "public", "disk_format": "qcow2",
              "size": 583335936, "sha256": SHA_Q}
    add(*_ours(UploadFailedV1, {**GENERIC_IDENTITY, "target": "openstack",
                                "destination": "fedora-infra", "error_kind": "cloud",
                                "error": "503 from Glance", "retryable": True}))
    add(*_ours(UploadFailedV1, {**GENERIC_IDENTITY, "target": "openstack",
                                "destination": "other-cloud", "error_kind": "cloud",
                                "error": "quota exceeded", "retryable": False}))
    for cloud, image_id in (("fedora-infra", GLANCE_A), ("vexxhost", GLANCE_B)):
        add(*_ours(OpenStackImagePublishedV1, {**GENERIC_IDENTITY, **glance, "cloud": cloud,
                                               "image_id": image_id}))
    # the containers target: x86_64 first (the list waits for aarch64), then aarch64 with the
    # list, which takes quay.io's `latest` from fedora_image_uploader's F40 list above
    for arch, digest, listed in (("x86_64", DIGEST_X86, None), ("aarch64", DIGEST_ARM, {
            "digest": DIGEST_LIST, "manifests": {"aarch64": DIGEST_ARM, "x86_64": DIGEST_X86}})):
        add(*_ours(ContainerPublishedV1, {
            **CONTAINER_IDENTITY, "name": f"{CONTAINER}.{arch}", "arch": arch,
            "registry": QUAY, "repository": "fedora",
            "reference": f"{QUAY}/fedora:43-20251023.0-{arch}", "digest": digest,
            "manifest_list": listed, "tags": ["43", "43-20251023.0", "latest"] if listed else [],
            "kept_tags": {}, "pending_arches": [] if listed else ["aarch64"]}))

    # ---- not understood (counted, never fatal) --------------------------------------------
    add(PROD + "fedimg.image.bogus", {"what": "no such event"})
    add(*_ours(AwsRegionPublishedV1, {**NIGHTLY_IDENTITY, "region": "us-east-1",
                                      "ami": "javascript:alert(1)", "snapshot_id": None,
                                      "public": True, "ami_name": NIGHTLY_NAME}))
    add(*_ours(OpenStackImagePublishedV1, {**GENERIC_IDENTITY, **glance, "cloud": "x",
                                           "image_id": "<img src=x onerror=alert(1)>"}))

    expected = {
        "Fedora-Cloud-Base-24-20160710.0.x86_64": {
            "release": "24", "subvariant": "Cloud_Base", "arch": "x86_64",
            "channel": "candidate", "official": False,
            "aws": {"eu-west-1": {"ami": "ami-1234fda"}, "us-west-2": {"ami": "ami-0c0ffee1"}},
            "failures": [("aws", "ap-northeast-1")],
        },
        "Fedora-Atomic-27-20180507.0.x86_64": {
            "release": "27", "subvariant": "Atomic", "arch": "x86_64", "channel": "candidate",
            "official": False,
            "aws": {"us-west-2": {"ami": "ami-2e80f656"}, "eu-west-2": {"ami": "ami-d813f1bf"}},
        },
        "Fedora-Cloud-Base-AmazonEC2-40-20240501.n.0.x86_64": {
            "release": "40", "subvariant": "Cloud_Base", "arch": "x86_64", "channel": "nightly",
            "official": False,
            "aws": {"us-east-2": {"ami": "ami-123"}, "us-west-1": {"ami": "ami-321"}},
        },
        "Fedora-Cloud-Base-AmazonEC2-40-20240501.n.0.aarch64": {
            "release": "40", "subvariant": "Cloud_Base", "arch": "aarch64", "channel": "nightly",
            "aws": {"us-east-1": {"ami": "ami-0aa0bb0cc0dd0ee0f"}},
        },
        "Fedora-Cloud-Base-Azure-40-20240501.n.0.x86_64": {"channel": "nightly", "aws": {}},
        "Fedora-Cloud-Base-GCE-40-20240414.0.x86_64": {"channel": "candidate", "aws": {}},
        "Fedora-Container-Base-40-20240501.n.0.s390x": {
            "subvariant": "Container_Base",
            "containers": [
                {"registry": QUAY, "repository": "fedora", "reference": None, "digest": None,
                 "manifest_list": None, "tags": ["40"]},  # `latest` moved on to F43
                {"registry": "registry.fedoraproject.org", "repository": "fedora",
                 "reference": None, "digest": None, "manifest_list": None,
                 "tags": ["40", "latest"]}]},
        **{f"{CONTAINER}.{arch}": {
            "release": "43", "subvariant": "Container_Base", "arch": arch,
            "channel": "candidate", "compose_id": "Fedora-43-20251023.0",
            "containers": [{"registry": QUAY, "repository": "fedora",
                            "reference": f"{QUAY}/fedora:43-20251023.0-{arch}",
                            "digest": digest, "manifest_list": DIGEST_LIST,
                            "tags": ["43", "43-20251023.0", "latest"]}]}
           for arch, digest in (("x86_64", DIGEST_X86), ("aarch64", DIGEST_ARM))},
        OUR_NAME: {
            "release": "41", "subvariant": "Cloud_Base", "arch": "x86_64", "channel": "release",
            "official": True, "compose_id": "Fedora-41-20241027.0",
            "aws": {"eu-west-1": {"ami": "ami-096b0e83fe32a74bb"},
                    "us-east-1": {"ami": "ami-0a1a3731a749a16db"}},
            "downloads": {"qcow2": (583335936, SHA_Q), "raw.tar.xz": (501538584, SHA_R)},
            "qe": "passed",
            "failures": [("aws", "ap-southeast-7")],
        },
        GENERIC_NAME: {
            "release": "41", "channel": "candidate", "compose_id": "Fedora-41-20241027.0",
            "aws": {}, "openstack": {"fedora-infra": {"image_id": GLANCE_A, "visibility": "public"},
                                     "vexxhost": {"image_id": GLANCE_B, "visibility": "public"}},
            "failures": [("openstack", "other-cloud")],  # fedora-infra's was superseded
        },
        NIGHTLY_NAME: {
            "release": "Rawhide", "arch": "aarch64", "channel": "nightly",
            "koji_task_id": 131000001, "aws": {"us-east-1": {"ami": "ami-0123456789abcdef0"}},
        },
    }
    return specs, expected


SKIPPED_IN_MIXED = 3
IMAGES_IN_MIXED = 15  # 12 named above + 3 more container arches


def as_rows(specs: list[tuple]) -> list[dict[str, Any]]:
    """The specs as datagrepper /raw rows (for in-memory tests), with fresh msg ids."""
    from standins.datagrepper_emulator import row

    return [row(str(uuid.uuid4()), sent_at.timestamp(), topic, body)
            for topic, body, sent_at in specs]


def check_report(report: dict[str, Any], expected: dict[str, dict]) -> None:
    """Assert every expected fact about every expected image in an images.json document."""
    by_name = {img["name"]: img for img in report["images"]}
    for name, facts in expected.items():
        assert name in by_name, f"{name} missing; have {sorted(by_name)}"
        img = by_name[name]
        for key, want in facts.items():
            if key == "downloads":
                got = {d["format"]: (d["size"], d["sha256"]) for d in img["downloads"]}
                assert got == want, (name, got)
            elif key == "qe":
                assert img["qe"] and img["qe"]["result"] == want, (name, img["qe"])
            elif key == "failures":
                got = [(f["target"], f["destination"]) for f in img["failures"]]
                assert got == want, (name, got)
            else:
                assert img[key] == want, (name, key, img[key])


def site_text(root: pathlib.Path) -> dict[str, str]:
    """Every file of a published report as text (strict UTF-8), the `generated` time blanked:
    the one thing two runs over the same history may differ in."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            text = p.read_bytes().decode("utf-8")
            text = re.sub(r'"generated": "[^"]*"', '"generated": "-"', text)
            text = re.sub(r"Generated (<time[^>]*>[^<]*</time>|\S+)", "Generated -", text)
            out[str(p.relative_to(root))] = text
    return out
