"""fedora-messaging schemas of every event fedimg publishes (public API; see docs/messages.md)."""

from shared.messages.base import FedimgMessage, routing_word
from shared.messages.events import (
    ERROR_KINDS,
    MESSAGES,
    AwsImagePublishedV1,
    AwsRegionPublishedV1,
    BuildStartedV1,
    DownloadPublishedV1,
    ImageAcceptedV1,
    ImagePromotedV1,
    OpenStackImagePublishedV1,
    QeResultV1,
    UploadFailedV1,
)

__all__ = [
    "ERROR_KINDS",
    "MESSAGES",
    "AwsImagePublishedV1",
    "AwsRegionPublishedV1",
    "BuildStartedV1",
    "DownloadPublishedV1",
    "FedimgMessage",
    "ImageAcceptedV1",
    "ImagePromotedV1",
    "OpenStackImagePublishedV1",
    "QeResultV1",
    "UploadFailedV1",
    "routing_word",
]
