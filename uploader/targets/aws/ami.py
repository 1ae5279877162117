"""Register the AMI, copy it to a region, and make it public — each step finding earlier work.

An AMI is found by its name (unique per account and region). A found AMI that is still pending
is waited for; one that failed is deregistered and made again. Launch and volume permissions
are only granted once the AMI is `available`, so no half-made AMI is ever public.
"""

from __future__ import annotations

import datetime
import logging
import math
from collections.abc import Callable
from typing import Any

import botocore.exceptions
from botocore.parsers import ResponseParserError

from shared.config import AwsConfig
from shared.errors import AwsError, one_line
from shared.images import aws_arch
from uploader.aws_clients import ClientFactory, error_code
from uploader.model import ImageSource
from uploader.targets.aws import naming

log = logging.getLogger(__name__)

ROOT_DEVICE = "/dev/sda1"  # what Fedora's own AMIs use
IMAGE_POLL = 15  # seconds between image_available polls
DEAD_STATES = frozenset({"failed", "error", "invalid", "deregistered"})


def boot_mode(fedora_arch: str) -> str:
    """x86_64 images boot BIOS or UEFI (uefi-preferred); aarch64 ones only UEFI."""
    return "uefi-preferred" if aws_arch(fedora_arch) == "x86_64" else "uefi"


def register_params(
    source: ImageSource, name: str, snapshot_id: str, aws: AwsConfig,
) -> dict[str, Any]:
    """Everything register_image is told; kept separate so tests can read the contract."""
    tags = naming.image_tags(source, name)
    return {
        "Name": name,
        "Description": naming.description(source),
        "Architecture": aws_arch(source.identity.arch),
        "VirtualizationType": "hvm",
        "RootDeviceName": ROOT_DEVICE,
        "BlockDeviceMappings": [{
            "DeviceName": ROOT_DEVICE,
            "Ebs": {"SnapshotId": snapshot_id, "VolumeType": aws.volume_type,
                    "DeleteOnTermination": True},
        }],
        "EnaSupport": True,
        "SriovNetSupport": "simple",
        "BootMode": boot_mode(source.identity.arch),
        "ImdsSupport": "v2.0",
        "TagSpecifications": [{"ResourceType": "image", "Tags": tags}],
    }


def find_image(ec2: Any, name: str, dead: list[str] | None = None) -> dict[str, Any] | None:
    """Our AMI called `name` in this region, or None. Dead ones are deregistered on the way
    (their ids appended to `dead`)."""
    images = ec2.describe_images(
        Owners=["self"], Filters=[{"Name": "name", "Values": [name]}]
    ).get("Images", [])
    live = []
    for image in sorted(images, key=lambda i: (i.get("CreationDate") or "", i["ImageId"])):
        if image.get("State") in DEAD_STATES:
            log.info("%s: deregistering %s AMI %s", name, image.get("State"), image["ImageId"])
            deregister(ec2, image["ImageId"])
            if dead is not None:
                dead.append(image["ImageId"])
        else:
            live.append(image)
    if len(live) > 1:  # names are unique per region; only a racing writer could do this
        log.warning("%s: %d AMIs with this name, using %s", name, len(live), live[0]["ImageId"])
    return live[0] if live else None


def deregister(ec2: Any, image_id: str) -> None:
    try:
        ec2.deregister_image(ImageId=image_id)
    except botocore.exceptions.ClientError as e:
        if error_code(e) not in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
            raise


def ensure_base_image(
    factory: ClientFactory, region: str, source: ImageSource, name: str,
    make_snapshot: Callable[[], str],
) -> dict[str, Any]:
    """The available AMI `name` in the base region. Only if there is none yet is
    `make_snapshot()` asked for a snapshot (found or uploaded) to register it from."""
    ec2 = factory.ec2(region)
    image = find_image(ec2, name)
    if image is None:
        snapshot_id = make_snapshot()
        params = register_params(source, name, snapshot_id, factory.aws)
        try:
            image_id = ec2.register_image(**params)["ImageId"]
            log.info("%s: registered %s in %s from %s", name, image_id, region, snapshot_id)
        except botocore.exceptions.ClientError as e:
            if error_code(e) != "InvalidAMIName.Duplicate":
                raise
            image = find_image(ec2, name)  # another run won the race: use its AMI
            if image is None:
                raise
            image_id = image["ImageId"]
    else:
        image_id = image["ImageId"]
        log.info("%s: found AMI %s in %s (%s)", name, image_id, region, image.get("State"))
    return finish(ec2, image_id, naming.image_tags(source, name), factory.aws.copy_timeout)


def ensure_copy(
    factory: ClientFactory, region: str, source: ImageSource, name: str,
    base_image_id: str, base_region: str,
) -> dict[str, Any]:
    """The available copy of the base AMI in `region`, made with copy_image if missing."""
    ec2 = factory.ec2(region)
    tags = naming.image_tags(source, name)
    dead: list[str] = []
    image = find_image(ec2, name, dead)
    if image is None:
        image_id = ec2.copy_image(
            SourceImageId=base_image_id,
            SourceRegion=base_region,
            Name=name,
            Description=naming.description(source),
            ClientToken=naming.copy_token(base_image_id, region, dead),
            CopyImageTags=True,
        )["ImageId"]
        log.info("%s: copying %s to %s as %s", name, base_image_id, region, image_id)
    else:
        image_id = image["ImageId"]
        log.info("%s: found copy %s in %s (%s)", name, image_id, region, image.get("State"))
    deadline = factory.deadline(region)
    # Under a region deadline, poll once more after it: that poll raises the deadline's own
    # error, so the wait never gives up before the deadline and never outlives it by a poll.
    timeout = deadline.remaining() + IMAGE_POLL if deadline else factory.aws.copy_timeout
    return finish(ec2, image_id, tags, timeout)


def finish(ec2: Any, image_id: str, tags: list[dict[str, str]], timeout: float) -> dict[str, Any]:
    """Tag the AMI, wait until it is available (bounded) and return its description."""
    # Tags given at creation are not kept by every EC2 implementation (moto drops them);
    # create_tags is idempotent, so it is always safe to (re)apply them.
    ec2.create_tags(Resources=[image_id], Tags=tags)
    state = ec2.describe_images(ImageIds=[image_id])["Images"][0].get("State")
    if state == "disabled":  # someone withdrew it on purpose: never silently republish
        raise AwsError(f"AMI {image_id} is disabled; enable or deregister it to republish")
    ec2.get_waiter("image_available").wait(
        ImageIds=[image_id],
        WaiterConfig={"Delay": IMAGE_POLL, "MaxAttempts": max(1, math.ceil(timeout / IMAGE_POLL))},
    )
    return ec2.describe_images(ImageIds=[image_id])["Images"][0]


def snapshot_ids(image: dict[str, Any]) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", [])
            if m.get("Ebs", {}).get("SnapshotId")]


def make_public(ec2: Any, image: dict[str, Any]) -> None:
    """Launch permission for everyone, and volume permission on the snapshots so that other
    accounts can also copy the AMI. Only ever called on an available AMI."""
    if image.get("State") != "available":
        raise RuntimeError(
            f"refusing to make {image['ImageId']} public in state {image.get('State')}")
    ec2.modify_image_attribute(
        ImageId=image["ImageId"], LaunchPermission={"Add": [{"Group": "all"}]})
    for snap in snapshot_ids(image):
        ec2.modify_snapshot_attribute(
            SnapshotId=snap, Attribute="createVolumePermission", OperationType="add",
            GroupNames=["all"],
        )


def tag_snapshots(ec2: Any, image: dict[str, Any], tags: list[dict[str, str]]) -> None:
    """Copies' snapshots carry no tags of their own; cleanup and people need them."""
    snaps = snapshot_ids(image)
    if snaps:
        ec2.create_tags(Resources=snaps, Tags=[t for t in tags if t["Key"] != naming.TAG_UPLOAD])


def deprecate_at(image: dict[str, Any], days: int) -> datetime.datetime:
    """Creation time + days, so every run computes the same date for the same AMI."""
    created = image.get("CreationDate")
    if isinstance(created, str):
        base = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    elif isinstance(created, datetime.datetime):
        base = created
    else:
        base = datetime.datetime.now(datetime.UTC)
    if base.tzinfo is None:
        base = base.replace(tzinfo=datetime.UTC)
    return (base + datetime.timedelta(days=days)).replace(second=0, microsecond=0)


def deprecate(ec2: Any, image: dict[str, Any], days: int) -> bool:
    """Mark the AMI deprecated `days` after creation; False (with a warning) if EC2 refused.

    Deprecation is advice to users, set after the AMI is already public: failing the region
    over it would only make a retry redo finished work. moto has no such API (it answers 500).
    """
    try:
        ec2.enable_image_deprecation(
            ImageId=image["ImageId"], DeprecateAt=deprecate_at(image, days))
        return True
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError,
            ResponseParserError) as e:
        log.warning("%s: could not set deprecation date: %s", image["ImageId"], one_line(e))
        return False
