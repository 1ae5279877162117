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
from shared.errors import TransientError
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
    raw_path: Path | None,
    name: str,
    tags: list[dict[str, str]],
    sha256: str | None,
    description: str = "",
) -> str:
    """The id of a completed snapshot of `raw_path` tagged for `name`, uploading it if needed
    (`raw_path` None: the image was streamed and found done, only reuse is possible)."""
    ec2 = factory.ec2(region)
    replaced: list[str] = []
    snapshot_id = reuse_or_clear(ec2, name, replaced)
    if snapshot_id is None and raw_path is None:  # streamed nothing: it existed back then
        raise TransientError(f"{name}: the snapshot found while streaming is gone")
    if snapshot_id is None:
        snapshot_id = upload(factory, region, raw_path, name, tags, sha256, replaced, description)
    wait_completed(ec2, snapshot_id, factory.aws)
    return snapshot_id


def reuse_or_clear(ec2: Any, name: str, replaced: list[str]) -> str | None:
    """The id of our completed snapshot for `name`, if there is one; interrupted ones are
    deleted on the way (their ids appended to `replaced`)."""
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
    if chosen is None:
        return None
    log.info("%s: reusing uploaded snapshot %s", name, chosen["SnapshotId"])
    return chosen["SnapshotId"]


def delete_snapshot(ec2: Any, snapshot_id: str) -> None:
    try:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    except botocore.exceptions.ClientError as e:
        code = error_code(e) or ""
        if code == "InvalidSnapshot.InUse":  # an AMI uses it after all: not ours to remove
            log.warning("snapshot %s is in use, left alone: %s", snapshot_id, e)
        elif "NotFound" not in code:
            raise


def start(
    factory: ClientFactory,
    region: str,
    size: int,
    name: str,
    tags: list[dict[str, str]],
    sha256: str | None,
    replaced: list[str],
    description: str = "",
) -> str:
    """Start a new snapshot for a disk of `size` bytes, tagged "started"; returns its id."""
    start_tags = [t for t in tags if t["Key"] != naming.TAG_UPLOAD]
    start_tags.append({"Key": naming.TAG_UPLOAD, "Value": naming.UPLOAD_STARTED})
    started = factory.ebs(region).start_snapshot(
        VolumeSize=blocks.volume_size_gib(size),
        Tags=start_tags,
        Description=description or name,
        ClientToken=naming.snapshot_token(name, sha256, replaced),
        Timeout=START_TIMEOUT_MINUTES,
    )
    snapshot_id = started["SnapshotId"]
    log.info("%s: started snapshot %s (%d GiB) in %s", name, snapshot_id,
             blocks.volume_size_gib(size), region)
    return snapshot_id


def complete(factory: ClientFactory, region: str, snapshot_id: str, name: str,
             digests: dict[int, bytes]) -> None:
    """Complete a filled snapshot with its LINEAR checksum, then tag it "complete"."""
    result = factory.ebs(region).complete_snapshot(
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
    fd = os.open(raw_path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        snapshot_id = start(factory, region, size, name, tags, sha256, replaced, description)
        digests = put_blocks(factory.ebs(region), snapshot_id, fd, size, name, factory.aws)
    finally:
        os.close(fd)
    complete(factory, region, snapshot_id, name, digests)
    return snapshot_id


def put_blocks(
    ebs: Any,
    snapshot_id: str,
    fd: int,
    size: int,
    name: str,
    aws: AwsConfig,
) -> dict[int, bytes]:
    """Put every data block of a sparse raw file; returns {block index: raw SHA-256 digest}."""
    ranges = list(blocks.data_ranges(fd, size))
    putter = BlockPutter(ebs, snapshot_id, name, aws, size,
                         sum(1 for _ in blocks.candidate_blocks(ranges)))
    try:
        for index in blocks.candidate_blocks(ranges):
            data = blocks.read_block(fd, index, size)
            if blocks.is_zero(data):
                putter.zero()
            else:
                putter.put(index, data)
        return putter.finish()
    finally:
        putter.close()


class BlockPutter:
    """PutSnapshotBlock for blocks handed in one at a time, by a bounded pool of workers.

    `put` returns at once while fewer than 2 x `aws.upload_workers` blocks are in flight and
    waits for one to finish otherwise: that wait is the backpressure that keeps memory flat
    whatever the image size, and (when the blocks come from a download) slows the reading of
    the network down to what EBS takes. The first failed put is raised by the next `put` or by
    `finish`.
    """

    def __init__(self, ebs: Any, snapshot_id: str, name: str, aws: AwsConfig, size: int,
                 candidates: int) -> None:
        self.ebs = ebs
        self.snapshot_id = snapshot_id
        self.progress = UploadProgress(name, candidates, size)
        self.ticker = Ticker(log, aws.progress_interval, self.progress.line)
        self.digests: dict[int, bytes] = {}
        self.workers = max(1, aws.upload_workers)
        self._pool = concurrent.futures.ThreadPoolExecutor(self.workers,
                                                           thread_name_prefix="ebs-put")
        self._inflight: set[concurrent.futures.Future] = set()

    def zero(self) -> None:
        self.progress.zero()

    def put(self, index: int, data: bytes) -> None:
        """Queue one BLOCK_SIZE block; waits while the pool is full."""
        if len(self._inflight) >= 2 * self.workers:
            done, self._inflight = concurrent.futures.wait(
                self._inflight, return_when=concurrent.futures.FIRST_COMPLETED)
            self._collect(done)
        self._inflight.add(self._pool.submit(self._put, index, data))

    def finish(self) -> dict[int, bytes]:
        """Wait for every queued block; {block index: raw SHA-256 digest} of those written."""
        done, self._inflight = concurrent.futures.wait(self._inflight)
        self._collect(done)
        self.ticker.tick(force=True)
        return self.digests

    def close(self) -> None:
        """Drop what is still queued and wait for the puts in flight (idempotent)."""
        for fut in self._inflight:
            fut.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _collect(self, done: set[concurrent.futures.Future]) -> None:
        for fut in done:
            index, digest = fut.result()  # re-raises the first failure
            self.digests[index] = digest

    def _put(self, index: int, data: bytes) -> tuple[int, bytes]:
        digest = blocks.block_digest(data)

        def call():
            return self.ebs.put_snapshot_block(
                SnapshotId=self.snapshot_id,
                BlockIndex=index,
                BlockData=data,
                DataLength=blocks.BLOCK_SIZE,
                Checksum=blocks.b64(digest),
                ChecksumAlgorithm="SHA256",
            )

        retry_on_codes(call, codes=NOT_YET_CODES | THROTTLING_CODES, deadline=NOT_YET_WINDOW)
        self.progress.sent(len(data))
        self.ticker.tick()
        return index, digest


def wait_completed(ec2: Any, snapshot_id: str, aws: AwsConfig) -> None:
    ec2.get_waiter("snapshot_completed").wait(
        SnapshotIds=[snapshot_id],
        WaiterConfig={"Delay": SNAPSHOT_POLL,
                      "MaxAttempts": max(1, math.ceil(aws.snapshot_timeout / SNAPSHOT_POLL))},
    )
