"""Upload a sparse raw disk as an EBS snapshot with the EBS direct API (no S3, no vmimport).

start_snapshot -> put_snapshot_block for every data block (parallel, bounded) ->
complete_snapshot with the LINEAR checksum -> tag "fedimg:upload=complete" -> wait completed.

Idempotency: snapshots are found by the tag fedimg:ami-name. One tagged "complete" (and not in
error) is reused. One without that tag was interrupted (a crash, SIGKILL, an error mid-upload):
it is deleted and the upload redone with a fresh ClientToken. EBS itself verifies every block
checksum and the LINEAR aggregate, so a snapshot it calls completed is the bytes we sent.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import os
from pathlib import Path
from typing import Any

import botocore.exceptions

from shared.config import AwsConfig
from uploader.aws_clients import THROTTLING_CODES, ClientFactory, error_code, retry_on_codes
from uploader.targets.aws import blocks, naming
from uploader.targets.aws.progress import Ticker, UploadProgress

log = logging.getLogger(__name__)

# "The snapshot does not exist" is normal for up to ~2 minutes after start_snapshot.
NOT_YET_CODES = frozenset({"ResourceNotFoundException"})
NOT_YET_WINDOW = 150.0
SNAPSHOT_POLL = 5  # seconds between snapshot_completed polls
START_TIMEOUT_MINUTES = 60  # EBS cancels the snapshot if no block arrives for this long


def find_snapshots(ec2: Any, name: str) -> list[dict[str, Any]]:
    pages = ec2.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"], Filters=[{"Name": f"tag:{naming.TAG_AMI_NAME}", "Values": [name]}]
    )
    # Only snapshots our upload started carry the upload tag; AMI copies' snapshots are tagged
    # with the AMI name too but are none of this module's business.
    found = [s for page in pages for s in page.get("Snapshots", [])
             if naming.TAG_UPLOAD in tag_dict(s)]
    return sorted(found, key=lambda s: (s.get("StartTime") or 0, s["SnapshotId"]))


def tag_dict(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def reusable(snapshot: dict[str, Any]) -> bool:
    return (tag_dict(snapshot).get(naming.TAG_UPLOAD) == naming.UPLOAD_COMPLETE
            and snapshot.get("State") != "error")


def ensure_snapshot(
    factory: ClientFactory,
    region: str,
    raw_path: Path,
    name: str,
    tags: list[dict[str, str]],
    sha256: str | None,
    description: str = "",
) -> str:
    """The id of a completed snapshot of `raw_path` tagged for `name`, uploading it if needed."""
    ec2 = factory.ec2(region)
    replaced = []
    chosen = None
    for snap in find_snapshots(ec2, name):
        if chosen is None and reusable(snap):
            chosen = snap
            continue
        if reusable(snap):
            log.warning("%s: extra completed snapshot %s left alone (using %s)",
                        name, snap["SnapshotId"], chosen["SnapshotId"])
            continue
        log.info("%s: deleting interrupted snapshot %s (state %s, upload tag %s)", name,
                 snap["SnapshotId"], snap.get("State"), tag_dict(snap).get(naming.TAG_UPLOAD))
        delete_snapshot(ec2, snap["SnapshotId"])
        replaced.append(snap["SnapshotId"])
    if chosen is not None:
        log.info("%s: reusing uploaded snapshot %s", name, chosen["SnapshotId"])
        snapshot_id = chosen["SnapshotId"]
    else:
        snapshot_id = upload(factory, region, raw_path, name, tags, sha256, replaced, description)
    wait_completed(ec2, snapshot_id, factory.aws)
    return snapshot_id


def delete_snapshot(ec2: Any, snapshot_id: str) -> None:
    try:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    except botocore.exceptions.ClientError as e:
        code = error_code(e) or ""
        if code == "InvalidSnapshot.InUse":  # an AMI uses it after all: not ours to remove
            log.warning("snapshot %s is in use, left alone: %s", snapshot_id, e)
        elif "NotFound" not in code:
            raise


def upload(
    factory: ClientFactory,
    region: str,
    raw_path: Path,
    name: str,
    tags: list[dict[str, str]],
    sha256: str | None,
    replaced: list[str],
    description: str = "",
) -> str:
    """Start, fill and complete a new snapshot; returns its id once EBS accepted it."""
    ebs = factory.ebs(region)
    aws = factory.aws
    fd = os.open(raw_path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        start_tags = [t for t in tags if t["Key"] != naming.TAG_UPLOAD]
        start_tags.append({"Key": naming.TAG_UPLOAD, "Value": naming.UPLOAD_STARTED})
        started = ebs.start_snapshot(
            VolumeSize=blocks.volume_size_gib(size),
            Tags=start_tags,
            Description=description or name,
            ClientToken=naming.snapshot_token(name, sha256, replaced),
            Timeout=START_TIMEOUT_MINUTES,
        )
        snapshot_id = started["SnapshotId"]
        log.info("%s: started snapshot %s (%d GiB) in %s", name, snapshot_id,
                 blocks.volume_size_gib(size), region)
        digests = put_blocks(ebs, snapshot_id, fd, size, name, aws)
    finally:
        os.close(fd)
    result = ebs.complete_snapshot(
        SnapshotId=snapshot_id,
        ChangedBlocksCount=len(digests),
        Checksum=blocks.linear_checksum(digests),
        ChecksumAlgorithm="SHA256",
        ChecksumAggregationMethod="LINEAR",
    )
    if result.get("Status") == "error":
        raise RuntimeError(f"EBS rejected snapshot {snapshot_id} on completion")
    factory.ec2(region).create_tags(
        Resources=[snapshot_id], Tags=[{"Key": naming.TAG_UPLOAD, "Value": naming.UPLOAD_COMPLETE}]
    )
    log.info("%s: completed snapshot %s with %d blocks", name, snapshot_id, len(digests))
    return snapshot_id


def put_blocks(
    ebs: Any,
    snapshot_id: str,
    fd: int,
    size: int,
    name: str,
    aws: AwsConfig,
) -> dict[int, bytes]:
    """Put every data block; returns {block index: raw SHA-256 digest} of the blocks written.

    One reader (this thread) feeds `upload_workers` putters; at most 2 x workers blocks are in
    memory at once, so memory stays flat whatever the image size.
    """
    ranges = list(blocks.data_ranges(fd, size))
    progress = UploadProgress(name, sum(1 for _ in blocks.candidate_blocks(ranges)), size)
    ticker = Ticker(log, aws.progress_interval, progress.line)
    digests: dict[int, bytes] = {}
    workers = max(1, aws.upload_workers)

    def put(index: int, data: bytes) -> tuple[int, bytes]:
        digest = blocks.block_digest(data)

        def call():
            return ebs.put_snapshot_block(
                SnapshotId=snapshot_id,
                BlockIndex=index,
                BlockData=data,
                DataLength=blocks.BLOCK_SIZE,
                Checksum=blocks.b64(digest),
                ChecksumAlgorithm="SHA256",
            )

        retry_on_codes(call, codes=NOT_YET_CODES | THROTTLING_CODES, deadline=NOT_YET_WINDOW)
        progress.sent(len(data))
        ticker.tick()
        return index, digest

    inflight: set[concurrent.futures.Future] = set()

    def collect(done: set[concurrent.futures.Future]) -> None:
        for fut in done:
            index, digest = fut.result()  # re-raises the first failure
            digests[index] = digest

    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="ebs-put") as pool:
        try:
            for index in blocks.candidate_blocks(ranges):
                data = blocks.read_block(fd, index, size)
                if blocks.is_zero(data):
                    progress.zero()
                    continue
                if len(inflight) >= 2 * workers:
                    done, inflight = concurrent.futures.wait(
                        inflight, return_when=concurrent.futures.FIRST_COMPLETED)
                    collect(done)
                inflight.add(pool.submit(put, index, data))
            done, inflight = concurrent.futures.wait(inflight)
            collect(done)
        except BaseException:
            for fut in inflight:
                fut.cancel()
            raise
    ticker.tick(force=True)
    return digests


def wait_completed(ec2: Any, snapshot_id: str, aws: AwsConfig) -> None:
    ec2.get_waiter("snapshot_completed").wait(
        SnapshotIds=[snapshot_id],
        WaiterConfig={"Delay": SNAPSHOT_POLL,
                      "MaxAttempts": max(1, math.ceil(aws.snapshot_timeout / SNAPSHOT_POLL))},
    )
