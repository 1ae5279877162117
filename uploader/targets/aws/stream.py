"""The AWS target's block sink: the snapshot is filled while the image is still downloading.

Intake (uploader/intake/stream.py) calls `open_snapshot` once it knows the size of the raw disk,
then hands over every non-zero 512 KiB block as it comes out of the decompressor. Blocks go to
EBS through the same bounded pool of PutSnapshotBlock workers as an upload from a raw file, so
a slow EBS slows the download down instead of filling memory.

Trust is unchanged: the snapshot is only completed (CompleteSnapshot, tag "complete") by
`publish_aws`, which runs after intake checked the sha256 and size of the whole download. If
the download fails verification, is cut off for good or is not valid xz, intake calls `abort`,
which deletes the pending snapshot. A process killed mid-stream leaves a snapshot tagged
"started"; the next delivery deletes it (snapshot.ensure_snapshot's rule) and streams again.
"""

from __future__ import annotations

import logging

from shared.config import Config
from uploader.aws_clients import ClientFactory
from uploader.model import Clients, ImageSource
from uploader.targets.aws import ami, blocks, naming, snapshot

log = logging.getLogger(__name__)


class SnapshotStream:
    """One started EBS snapshot being filled from a stream (see the module docstring)."""

    def __init__(self, factory: ClientFactory, region: str, name: str, snapshot_id: str,
                 size: int) -> None:
        self.factory = factory
        self.region = region
        self.name = name
        self.snapshot_id = snapshot_id
        self.size = size
        self.error: BaseException | None = None
        self._done = False
        self._putter = snapshot.BlockPutter(factory.ebs(region), snapshot_id, name,
                                            factory.aws, size,
                                            -(-size // blocks.BLOCK_SIZE))

    def block(self, index: int, data: bytes) -> None:
        """Send one non-zero block (waits while the pool is full). After a failed put the
        rest is dropped: the download goes on for the other targets, and `complete` raises."""
        if self.error is not None:
            return
        try:
            self._putter.put(index, data)
        except Exception as exc:  # re-raised by complete(), i.e. inside publish_aws
            log.error("%s: putting blocks into %s failed: %s", self.name, self.snapshot_id, exc)
            self.error = exc
            self._putter.close()

    def zero(self) -> None:
        self._putter.zero()

    def complete(self) -> str:
        """Wait for the last blocks, complete and tag the snapshot; its id. Called only once
        the download is verified."""
        if self.error is not None:
            raise self.error
        try:
            digests = self._putter.finish()
        finally:
            self._putter.close()
        snapshot.complete(self.factory, self.region, self.snapshot_id, self.name, digests)
        self._done = True
        return self.snapshot_id

    def abort(self, why: str) -> None:
        """Stop sending and delete the snapshot unless it was completed (idempotent; logs,
        never raises: it runs while another error is on its way out)."""
        self._putter.close()
        if self._done:
            return
        self._done = True
        try:
            snapshot.delete_snapshot(self.factory.ec2(self.region), self.snapshot_id)
            log.info("%s: deleted pending snapshot %s (%s)", self.name, self.snapshot_id, why)
        except Exception as exc:  # left tagged "started": the next delivery deletes it
            log.warning("%s: could not delete pending snapshot %s: %s", self.name,
                        self.snapshot_id, exc)


def open_snapshot(source: ImageSource, size: int, *, config: Config,
                  clients: Clients) -> SnapshotStream | None:
    """A started snapshot for a raw disk of `size` bytes, or None when the base region already
    has the AMI or a completed snapshot of this image (nothing to send; publish_aws finds them).

    Interrupted snapshots of an earlier delivery are deleted first, as ensure_snapshot does.
    """
    aws = config.aws
    factory = ClientFactory(clients.aws, aws)
    region = aws.base_region
    name = naming.ami_name(source, aws.volume_type)
    ec2 = factory.ec2(region)
    if ami.find_image(ec2, name) is not None:
        log.info("%s: AMI exists in %s, nothing to stream", name, region)
        return None
    replaced: list[str] = []
    if snapshot.reuse_or_clear(ec2, name, replaced) is not None:
        return None
    snapshot_id = snapshot.start(factory, region, size, name, naming.image_tags(source, name),
                                 source.sha256, replaced, naming.description(source))
    return SnapshotStream(factory, region, name, snapshot_id, size)
