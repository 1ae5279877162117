"""fedora-messaging schemas of every event fedimg publishes (public API; see docs/messages.md)."""

from shared.messages.base import FedimgMessage, routing_word
from shared.messages.containers import ContainerPublishedV1
from shared.messages.events import (
    CORE_MESSAGES,
    ERROR_KINDS,
    AwsImagePublishedV1,
    AwsRegionPublishedV1,
    BuildStartedV1,
    DownloadPublishedV1,
    ImageAcceptedV1,
    ImagePromotedV1,
    QeResultV1,
    UploadFailedV1,
)
from shared.messages.openstack import OpenStackImagePublishedV1

# Entry-point name -> class; setup.cfg registers exactly these under `fedora.messages`.
MESSAGES: dict[str, type[FedimgMessage]] = {
    **CORE_MESSAGES,
    "fedimg.image.published.v1.container": ContainerPublishedV1,
    "fedimg.image.published.v1.openstack": OpenStackImagePublishedV1,
}

__all__ = [
    "ERROR_KINDS",
    "MESSAGES",
    "AwsImagePublishedV1",
    "AwsRegionPublishedV1",
    "BuildStartedV1",
    "ContainerPublishedV1",
    "DownloadPublishedV1",
    "FedimgMessage",
    "ImageAcceptedV1",
    "ImagePromotedV1",
    "OpenStackImagePublishedV1",
    "QeResultV1",
    "UploadFailedV1",
    "routing_word",
]
