"""fedimg-aws-cleanup: deregister nightly AMIs older than aws.nightly_retention_days, everywhere.

    fedimg-aws-cleanup [--config FILE] [--dry-run] [--older-than DAYS]

Only AMIs we own that carry the tag fedimg:channel=nightly are considered; candidates and
releases are never touched. For each one: deregister, then delete its snapshots. In the base
region, uploaded snapshots of nightly images that no AMI uses any more (a run that died before
register_image) are deleted too. Every removal is printed as one line; --dry-run prints the
same lines ("would remove") and changes nothing. Exit 0 if everything listed was removed,
1 if something failed, 2 on a bad config.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import logging
import sys
from collections.abc import Callable
from typing import Any

import boto3
import botocore.exceptions

from shared.cli import cleanup_command
from shared.config import AwsConfig
from shared.errors import one_line
from uploader.aws_clients import ClientFactory
from uploader.targets.aws import ami, naming
from uploader.targets.aws.publish import resolve_regions
from uploader.targets.aws.snapshot import delete_snapshot

log = logging.getLogger(__name__)
NIGHTLY_FILTER = [{"Name": "tag:fedimg:channel", "Values": ["nightly"]}]


@dataclasses.dataclass
class Removal:
    region: str
    kind: str  # "ami" or "snapshot"
    resource_id: str
    name: str
    created: str
    snapshots: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None

    def line(self, dry_run: bool) -> str:
        verb = "would remove" if dry_run else ("FAILED to remove" if self.error else "removed")
        text = f"{verb} {self.kind} {self.resource_id} in {self.region} ({self.name}, created " \
               f"{self.created})"
        if self.snapshots:
            text += f" with snapshot(s) {', '.join(self.snapshots)}"
        if self.error:
            text += f": {self.error}"
        return text


def _created(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def expired_in_region(ec2: Any, region: str, cutoff: datetime.datetime,
                      base_region: bool) -> list[Removal]:
    """What would be removed in one region (nothing is changed here)."""
    images = [i for page in ec2.get_paginator("describe_images").paginate(
        Owners=["self"], Filters=NIGHTLY_FILTER) for i in page.get("Images", [])]
    found = []
    kept_snapshots = set()
    for image in sorted(images, key=lambda i: i.get("CreationDate", "")):
        snaps = ami.snapshot_ids(image)
        if _created(image["CreationDate"]) < cutoff:
            found.append(Removal(region, "ami", image["ImageId"], image.get("Name", ""),
                                 image["CreationDate"], snaps))
        else:
            kept_snapshots.update(snaps)
    if base_region:
        removed_snaps = {s for r in found for s in r.snapshots}
        pages = ec2.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"], Filters=NIGHTLY_FILTER + [
                {"Name": "tag-key", "Values": [naming.TAG_UPLOAD]}])
        for snap in (s for page in pages for s in page.get("Snapshots", [])):
            sid = snap["SnapshotId"]
            if sid in kept_snapshots or sid in removed_snaps:
                continue
            if _created(snap["StartTime"]) < cutoff:
                tags = {t["Key"]: t["Value"] for t in snap.get("Tags", [])}
                found.append(Removal(region, "snapshot", sid, tags.get(naming.TAG_AMI_NAME, ""),
                                     _created(snap["StartTime"]).isoformat()))
    return found


def remove(ec2: Any, removal: Removal) -> None:
    try:
        if removal.kind == "ami":
            ami.deregister(ec2, removal.resource_id)
            for snap in removal.snapshots:
                delete_snapshot(ec2, snap)
        else:
            delete_snapshot(ec2, removal.resource_id)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        removal.error = one_line(e)


def cleanup(
    session: Any,
    aws: AwsConfig,
    *,
    dry_run: bool = False,
    older_than_days: int | None = None,
    now: datetime.datetime | None = None,
    say: Callable[[str], None] = print,
) -> list[Removal]:
    """Remove (or with dry_run list) expired nightly AMIs in every configured region."""
    factory = ClientFactory(session, aws)
    days = aws.nightly_retention_days if older_than_days is None else older_than_days
    cutoff = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(days=days)
    regions = list(dict.fromkeys([aws.base_region, *resolve_regions(factory, aws)]))

    def one_region(region: str) -> list[Removal]:
        ec2 = factory.ec2(region)
        found = expired_in_region(ec2, region, cutoff, region == aws.base_region)
        if not dry_run:
            for removal in found:
                remove(ec2, removal)
        return found

    results: list[Removal] = []
    with concurrent.futures.ThreadPoolExecutor(max(1, aws.max_parallel_copies)) as pool:
        futures = {pool.submit(one_region, r): r for r in regions}
        for fut in concurrent.futures.as_completed(futures):
            region = futures[fut]
            try:
                results.extend(fut.result())
            except Exception as e:  # listing failed: say so, keep going with the others
                results.append(Removal(region, "region", region, "", "", error=one_line(e)))
    results.sort(key=lambda r: (r.region, r.created, r.resource_id))
    for removal in results:
        say(removal.line(dry_run))
    amis = sum(1 for r in results if r.kind == "ami" and not r.error)
    say(f"{'would remove' if dry_run else 'removed'} {amis} nightly AMI(s) older than {days} "
        f"days (before {cutoff:%Y-%m-%d %H:%M} UTC) in {len(regions)} region(s)")
    return results


def main(argv: list[str] | None = None) -> int:
    args, config = cleanup_command(
        "fedimg-aws-cleanup",
        "Deregister nightly AMIs older than aws.nightly_retention_days in every configured "
        "region and delete their snapshots.",
        argv, flag="--older-than", metavar="DAYS", overrides="aws.nightly_retention_days")
    results = cleanup(boto3.Session(), config.aws, dry_run=args.dry_run,
                      older_than_days=args.older_than)
    return 1 if any(r.error for r in results) else 0

if __name__ == "__main__":
    sys.exit(main())
