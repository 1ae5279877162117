"""The messages fedimg publishes. QE and other consumers depend on them: they are public API.

Change a body incompatibly only with a new class and a new version in the topic (v2).
Each class carries an `example` body; the topic reference docs/messages.md is generated from
these (`python -m shared.messages.doc`) and a test keeps the two in step.
"""

from __future__ import annotations

from typing import Any

from shared.messages.base import (
    IDENTITY_PROPERTIES,
    IDENTITY_REQUIRED,
    SOURCE_PROPERTIES,
    SOURCE_REQUIRED,
    FedimgMessage,
    object_schema,
)

IMAGE_ROUTING = ("channel", "subvariant", "release", "arch")

_AGENT = {"agent": {"type": ["string", "null"], "description": "who or what caused the event"}}
_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
# A target's registered name ("aws", "downloads", "openstack", ...), or "intake" for failures
# before any target ran. A pattern, not a list, so a new cloud adds no edit to these schemas;
# a test checks every registered name fits it.
_TARGET = {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,39}$"}

_EXAMPLE_IMAGE = {
    "name": "Fedora-Cloud-Base-AmazonEC2-Rawhide-20261125.n.0.x86_64",
    "release": "Rawhide",
    "subvariant": "Cloud_Base",
    "arch": "x86_64",
    "channel": "nightly",
    "compose_id": None,
    "koji_task_id": 139876543,
    "koji_build_id": None,
    "agent": "fedimg",
}


# Present (not null) when neither the image's name nor its source's words said the channel and
# the documented rule gave it (shared.images.infer_channel): "scratch Koji task", "Koji build",
# "test compose". Optional: messages from before the rule existed lack it.
_CHANNEL_INFERRED = {"channel_inferred": {
    "type": ["string", "null"],
    "description": "the rule that gave the channel when the name did not say it",
}}


def _image_schema(name: str, description: str, extra: dict[str, Any], required: list[str]):
    return object_schema(
        name,
        description,
        {**IDENTITY_PROPERTIES, **_CHANNEL_INFERRED, **SOURCE_PROPERTIES, **_AGENT, **extra},
        IDENTITY_REQUIRED + SOURCE_REQUIRED + required,
    )


class BuildStartedV1(FedimgMessage):
    """fedimg-build started a Koji image build."""

    topic_base = "fedimg.build.started.v1"
    routing = ("channel", "version")
    body_schema = object_schema(
        "build.started.v1",
        "A Koji image build was started by fedimg-build",
        {
            "job": {"type": "string", "minLength": 1},
            "channel": {"enum": ["nightly", "weekly", "candidate"]},
            "task_id": {"type": "integer"},
            "name": {"type": "string", "minLength": 1},
            "version": {"type": "string", "minLength": 1},
            "release": {"type": "string", "minLength": 1},
            "target": {"type": "string"},
            "ksurl": {"type": "string"},
            "kickstart": {"type": "string"},
            "arches": {"type": "array", "items": {"type": "string"}},
            "formats": {"type": "array", "items": {"type": "string"}},
            "scratch": {"type": "boolean"},
            "task_url": {"type": ["string", "null"]},
            **_AGENT,
        },
        ["job", "channel", "task_id", "name", "version", "release", "ksurl", "kickstart",
         "arches", "scratch"],
    )
    example = {
        "job": "cloud-base-rawhide-weekly",
        "channel": "weekly",
        "task_id": 139876543,
        "name": "Fedora-Cloud-Base",
        "version": "Rawhide",
        "release": "weekly.20261125",
        "target": "f44",
        "ksurl": "git+https://pagure.io/fedora-kickstarts.git?#main",
        "kickstart": "fedora-cloud-base.ks",
        "arches": ["x86_64", "aarch64"],
        "formats": ["raw-xz", "qcow2"],
        "scratch": True,
        "task_url": "https://koji.fedoraproject.org/koji/taskinfo?taskID=139876543",
        "agent": "fedimg",
    }

    @property
    def summary(self) -> str:
        b = self.body
        return (
            f"fedimg started {b['channel']} Koji image build {b['name']}-{b['version']}-"
            f"{b['release']} (task {b['task_id']}) for job {b['job']}"
        )


class ImageAcceptedV1(FedimgMessage):
    """The uploader fetched and verified an image and will publish it to its targets."""

    topic_base = "fedimg.image.accepted.v1"
    routing = IMAGE_ROUTING
    body_schema = _image_schema(
        "image.accepted.v1",
        "An image was fetched, verified and accepted for upload",
        {
            "targets": {"type": "array", "items": _TARGET},
            "source_url": {"type": "string"},
            "size": {"type": ["integer", "null"]},
            "sha256": {"anyOf": [_SHA256, {"type": "null"}]},
        },
        ["targets", "source_url"],
    )
    example = {
        **_EXAMPLE_IMAGE,
        "targets": ["aws", "downloads"],
        "source_url": "https://kojipkgs.fedoraproject.org/work/tasks/6545/139876545/"
        "Fedora-Cloud-Base-AmazonEC2-Rawhide-20261125.n.0.x86_64.raw.xz",
        "size": 501538584,
        "sha256": "7dbdfb789a1c4ad9dbe3a600ad50df04c55a7e59cc7ffbef8a860d410f073a97",
    }

    @property
    def summary(self) -> str:
        targets = ", ".join(self.body["targets"]) or "no target"
        return (
            f"fedimg accepted {self.image_label} from {self.origin.label} "
            f"for {targets}"
        )


class AwsRegionPublishedV1(FedimgMessage):
    """One region's AMI is available (one message per region)."""

    topic_base = "fedimg.image.published.v1.aws"
    routing = ("region", *IMAGE_ROUTING)
    body_schema = _image_schema(
        "image.published.v1.aws",
        "An AMI of the image is available in one EC2 region",
        {
            "region": {"type": "string", "minLength": 1},
            "ami": {"type": "string", "pattern": "^ami-[0-9a-f]+$"},
            "snapshot_id": {"type": ["string", "null"]},
            "public": {"type": "boolean"},
            "ami_name": {"type": "string"},
        },
        ["region", "ami", "public"],
    )
    example = {
        **_EXAMPLE_IMAGE,
        "region": "eu-west-1",
        "ami": "ami-096b0e83fe32a74bb",
        "snapshot_id": "snap-0e5a0f0c2d3b4a596",
        "public": True,
        "ami_name": "Fedora-Cloud-Base-AmazonEC2-Rawhide-20261125.n.0.x86_64-hvm-gp3",
    }

    @property
    def summary(self) -> str:
        b = self.body
        return f"fedimg published {self.image_label} as {b['ami']} in {b['region']}"


class DownloadPublishedV1(FedimgMessage):
    """One download file (qcow2 or raw.tar.xz) is on the download server."""

    topic_base = "fedimg.image.published.v1.downloads"
    routing = ("format", *IMAGE_ROUTING)
    body_schema = _image_schema(
        "image.published.v1.downloads",
        "A download artifact of the image is published with its checksum",
        {
            "format": {"enum": ["qcow2", "raw.tar.xz"]},
            "url": {"type": "string", "minLength": 1},
            "size": {"type": "integer", "minimum": 0},
            "sha256": _SHA256,
            "checksum_url": {"type": ["string", "null"]},
        },
        ["format", "url", "size", "sha256"],
    )
    example = {
        **_EXAMPLE_IMAGE,
        "format": "qcow2",
        "url": "https://dl.fedoraproject.org/pub/alt/cloud/Rawhide/nightly/"
        "Fedora-Cloud-Base-AmazonEC2-Rawhide-20261125.n.0.x86_64.qcow2",
        "size": 583335936,
        "sha256": "846574c8a97cd2d8dc1f231062d73107cc85cbbbda56335e264a46e3a6c8ab2f",
        "checksum_url": "https://dl.fedoraproject.org/pub/alt/cloud/Rawhide/nightly/CHECKSUM",
    }

    @property
    def summary(self) -> str:
        b = self.body
        return f"fedimg published {self.image_label} as {b['format']} at {b['url']}"


class AwsImagePublishedV1(FedimgMessage):
    """Every configured region is done for an image: the region -> AMI map (like
    fedora_image_uploader.published.v1.aws)."""

    topic_base = "fedimg.image.completed.v1.aws"
    routing = IMAGE_ROUTING
    body_schema = _image_schema(
        "image.completed.v1.aws",
        "The image's AWS publication finished; regions maps region to AMI id",
        {
            "regions": {
                "type": "object",
                "additionalProperties": {"type": "string", "pattern": "^ami-[0-9a-f]+$"},
            },
            "failed_regions": {"type": "array", "items": {"type": "string"}},
        },
        ["regions", "failed_regions"],
    )
    example = {
        **_EXAMPLE_IMAGE,
        "regions": {"us-east-1": "ami-0a1a3731a749a16db", "eu-west-1": "ami-096b0e83fe32a74bb"},
        "failed_regions": [],
    }

    @property
    def summary(self) -> str:
        b = self.body
        text = f"fedimg published {self.image_label} in {len(b['regions'])} AWS regions"
        if b["failed_regions"]:
            text += f", failed in {len(b['failed_regions'])} ({', '.join(b['failed_regions'])})"
        return text


ERROR_KINDS = ["source", "verification", "aws", "cloud", "conversion", "destination", "registry",
               "timeout", "internal"]


class UploadFailedV1(FedimgMessage):
    """Publishing to one destination failed (one message per failed region or format)."""

    topic_base = "fedimg.image.failed.v1"
    routing = ("target", "destination", *IMAGE_ROUTING)
    body_schema = _image_schema(
        "image.failed.v1",
        "Publishing the image to one destination failed",
        {
            "target": _TARGET,
            "destination": {"type": "string", "minLength": 1},
            "error_kind": {"enum": ERROR_KINDS},
            "error": {"type": "string"},
            "retryable": {"type": "boolean"},
        },
        ["target", "destination", "error_kind", "error", "retryable"],
    )
    example = {
        **_EXAMPLE_IMAGE,
        "target": "aws",
        "destination": "ap-southeast-7",
        "error_kind": "timeout",
        "error": "copy of ami-0a1a3731a749a16db did not become available within 2700 s",
        "retryable": True,
    }

    @property
    def summary(self) -> str:
        b = self.body
        retry = "may succeed on retry" if b["retryable"] else "will not succeed on retry"
        return (
            f"fedimg failed to publish {self.image_label} to {b['target']} "
            f"{b['destination']}: {b['error_kind']} error ({retry})"
        )


class ImagePromotedV1(FedimgMessage):
    """Release engineering declares an image the official one for its release."""

    topic_base = "fedimg.image.promoted.v1"
    routing = IMAGE_ROUTING
    body_schema = object_schema(
        "image.promoted.v1",
        "An image was promoted: it is the official image of its release",
        {
            **IDENTITY_PROPERTIES,
            **_AGENT,
            "official": {"const": True},
            "note": {"type": ["string", "null"]},
        },
        IDENTITY_REQUIRED + ["official", "agent"],
    )
    example = {
        "name": "Fedora-Cloud-Base-AmazonEC2-43-1.6.x86_64",
        "release": "43",
        "subvariant": "Cloud_Base",
        "arch": "x86_64",
        "channel": "release",
        "official": True,
        "agent": "releng-bot",
        "note": "Fedora 43 GA",
    }

    @property
    def summary(self) -> str:
        return f"{self.body['agent']} promoted {self.image_label} to the official image"


class QeResultV1(FedimgMessage):
    """A QE verdict about an image."""

    topic_base = "fedimg.image.tested.v1"
    routing = ("result", *IMAGE_ROUTING)
    body_schema = object_schema(
        "image.tested.v1",
        "QE reported a test result for an image",
        {
            **IDENTITY_PROPERTIES,
            **_AGENT,
            "result": {"enum": ["passed", "failed", "needs_inspection"]},
            "test_suite": {"type": "string", "minLength": 1},
            "url": {"type": ["string", "null"]},
            "note": {"type": ["string", "null"]},
        },
        IDENTITY_REQUIRED + ["result", "test_suite", "agent"],
    )
    example = {
        "name": "Fedora-Cloud-Base-AmazonEC2-43-1.6.x86_64",
        "release": "43",
        "subvariant": "Cloud_Base",
        "arch": "x86_64",
        "channel": "candidate",
        "result": "passed",
        "test_suite": "openqa-cloud",
        "url": "https://openqa.fedoraproject.org/tests/overview?build=Fedora-43-20251023.0",
        "agent": "openqa",
        "note": None,
    }

    @property
    def summary(self) -> str:
        b = self.body
        return f"{b['agent']} reports {b['test_suite']} {b['result']} for {self.image_label}"


# Entry-point name -> class of the messages defined here; shared.messages.MESSAGES adds those of
# the targets that keep their schema in a module of its own (shared/messages/containers.py).
CORE_MESSAGES: dict[str, type[FedimgMessage]] = {
    "fedimg.build.started.v1": BuildStartedV1,
    "fedimg.image.accepted.v1": ImageAcceptedV1,
    "fedimg.image.published.v1.aws": AwsRegionPublishedV1,
    "fedimg.image.published.v1.downloads": DownloadPublishedV1,
    "fedimg.image.completed.v1.aws": AwsImagePublishedV1,
    "fedimg.image.failed.v1": UploadFailedV1,
    "fedimg.image.promoted.v1": ImagePromotedV1,
    "fedimg.image.tested.v1": QeResultV1,
}
