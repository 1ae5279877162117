"""Success messages of the clouds that publish through a gallery or an image family: Azure, GCE.

One message per image and cloud once the image is usable (Azure: the image version, replicated to
every region that worked; GCE: the image, in its family). Failures use the shared
fedimg.image.failed.v1 with target "azure" / "gcp". Bodies carry the image identity and source
like every fedimg message, plus what fedora_image_uploader's azure and gcp messages carried, so a
consumer of those finds the same facts here.
"""

from __future__ import annotations

from shared.messages.base import FedimgMessage
from shared.messages.events import _EXAMPLE_IMAGE, IMAGE_ROUTING, _image_schema

_REGIONS = {"type": "array", "items": {"type": "string", "minLength": 1}}
_GCE_NAME = {"type": "string", "pattern": "^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"}


class AzureImagePublishedV1(FedimgMessage):
    """The image is an image version in the Azure Compute Gallery, replicated to its regions
    (one message per image; like fedora_image_uploader.published.v1.azure)."""

    topic_base = "fedimg.image.published.v1.azure"
    routing = IMAGE_ROUTING
    body_schema = _image_schema(
        "image.published.v1.azure",
        "An Azure Compute Gallery image version of the image is available in its regions",
        {
            "gallery": {"type": "string", "minLength": 1},
            "image_definition_name": {"type": "string", "minLength": 1},
            "image_version_name": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
            "image_resource_id": {"type": "string", "minLength": 1},
            "community_resource_id": {"type": ["string", "null"]},
            "regions": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "region -> the resource id to use there"},
            "end_of_life": {"type": ["string", "null"], "description": "ISO 8601, nightlies"},
        },
        ["gallery", "image_definition_name", "image_version_name", "image_resource_id",
         "regions"],
    )
    example = {
        **_EXAMPLE_IMAGE,
        "name": "Fedora-Cloud-Base-Azure-Rawhide-20261125.n.0.x86_64",
        "gallery": "Fedora",
        "image_definition_name": "Fedora-Cloud-Rawhide-x64",
        "image_version_name": "20261125.0.0",
        "image_resource_id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups"
        "/fedora-images/providers/Microsoft.Compute/galleries/Fedora/images/"
        "Fedora-Cloud-Rawhide-x64/versions/20261125.0.0",
        "community_resource_id": "/CommunityGalleries/Fedora-5e266ba4-2250-406d-adad-"
        "5d73860d958f/Images/Fedora-Cloud-Rawhide-x64/Versions/20261125.0.0",
        "regions": {
            "eastus": "/CommunityGalleries/Fedora-5e266ba4-2250-406d-adad-5d73860d958f/Images/"
            "Fedora-Cloud-Rawhide-x64/Versions/20261125.0.0",
            "westeurope": "/CommunityGalleries/Fedora-5e266ba4-2250-406d-adad-5d73860d958f/"
            "Images/Fedora-Cloud-Rawhide-x64/Versions/20261125.0.0",
        },
        "end_of_life": "2026-12-09T00:00:00+00:00",
    }

    @property
    def summary(self) -> str:
        b = self.body
        return (f"fedimg published {self.image_label} as Azure image version "
                f"{b['image_definition_name']}/{b['image_version_name']} in "
                f"{len(b['regions'])} regions")


class GcpImagePublishedV1(FedimgMessage):
    """The image is a GCE image in its family (one message per image; like
    fedora_image_uploader.published.v1.gcp)."""

    topic_base = "fedimg.image.published.v1.gcp"
    routing = IMAGE_ROUTING
    body_schema = _image_schema(
        "image.published.v1.gcp",
        "A GCE image of the image is ready in its family",
        {
            "project": {"type": "string", "minLength": 1},
            "image_name": _GCE_NAME,
            "family": _GCE_NAME,
            "image_url": {"type": "string", "minLength": 1},
            "storage_locations": _REGIONS,
            "public": {"type": "boolean"},
            "deprecated": {"type": "array", "items": _GCE_NAME,
                           "description": "older images of the family deprecated for it"},
        },
        ["project", "image_name", "family", "image_url", "storage_locations", "public"],
    )
    example = {
        **_EXAMPLE_IMAGE,
        "name": "Fedora-Cloud-Base-GCE-Rawhide-20261125.n.0.x86_64",
        "project": "fedora-cloud",
        "image_name": "fedora-cloud-base-gce-rawhide-20261125-n-0-x86-64",
        "family": "fedora-cloud-rawhide-nightly",
        "image_url": "https://www.googleapis.com/compute/v1/projects/fedora-cloud/global/images/"
        "fedora-cloud-base-gce-rawhide-20261125-n-0-x86-64",
        "storage_locations": ["us"],
        "public": True,
        "deprecated": ["fedora-cloud-base-gce-rawhide-20261124-n-0-x86-64"],
    }

    @property
    def summary(self) -> str:
        b = self.body
        return (f"fedimg published {self.image_label} as GCE image {b['image_name']} in family "
                f"{b['family']}")


CLOUD_MESSAGES: dict[str, type[FedimgMessage]] = {
    "fedimg.image.published.v1.azure": AzureImagePublishedV1,
    "fedimg.image.published.v1.gcp": GcpImagePublishedV1,
}
