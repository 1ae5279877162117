"""fedimg-gcp-cleanup: keep the newest gcp.nightly_keep nightly images of each family.

    fedimg-gcp-cleanup [--config FILE] [--dry-run] [--keep N]

Only images labelled fedimg-channel=nightly are considered (candidates, releases and weeklies
are never touched); within each family the newest N (by creation time) stay and the rest are
deleted. Staging objects older than a day under gcp.staging_prefix (left by a run that was never
retried) are deleted too. Every removal is one printed line; --dry-run prints "would remove" and
changes nothing. Exit 0 if everything listed was removed, 1 if something failed, 2 on a bad
config.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import logging
import sys
from collections.abc import Callable

from google.cloud import compute_v1

from shared.cli import cleanup_command
from shared.errors import ConfigError, one_line
from uploader.targets.gcp import images, naming
from uploader.targets.gcp.clients import GcpClients, gcp_error, make_clients
from uploader.targets.gcp.settings import GcpConfig, gcp_config

log = logging.getLogger(__name__)
STAGING_MAX_AGE = datetime.timedelta(days=1)


@dataclasses.dataclass
class Removal:
    kind: str  # "image" or "object"
    name: str
    detail: str
    error: str | None = None

    def line(self, dry_run: bool) -> str:
        verb = "would remove" if dry_run else ("FAILED to remove" if self.error else "removed")
        return f"{verb} {self.kind} {self.name} ({self.detail})" + (
            f": {self.error}" if self.error else "")


def expired_images(gc: GcpClients, gcp: GcpConfig, keep: int) -> list[Removal]:
    """Nightly images beyond the newest `keep` of their family (nothing is changed here)."""
    request = compute_v1.ListImagesRequest(
        project=gc.project, filter=f'labels.{naming.LABEL_CHANNEL} = "nightly"')
    nightly = sorted(gc.images.list(request=request, timeout=gcp.timeout),
                     key=lambda i: (i.family, i.creation_timestamp, i.name))
    found = []
    for family, members in itertools.groupby(nightly, key=lambda i: i.family):
        newest_first = list(members)[::-1]
        for image in newest_first[max(0, keep):]:
            found.append(Removal("image", image.name,
                                 f"family {family}, created {image.creation_timestamp}"))
    return found


def stale_objects(gc: GcpClients, gcp: GcpConfig, now: datetime.datetime) -> list[Removal]:
    prefix = gcp.staging_prefix.strip("/") + "/"
    return [Removal("object", f"gs://{gcp.bucket}/{blob.name}", f"created {blob.time_created}")
            for blob in gc.storage.list_blobs(gcp.bucket, prefix=prefix, timeout=gcp.timeout)
            if blob.time_created and now - blob.time_created > STAGING_MAX_AGE]


def cleanup(gc: GcpClients, gcp: GcpConfig, *, dry_run: bool = False, keep: int | None = None,
            now: datetime.datetime | None = None,
            say: Callable[[str], None] = print) -> list[Removal]:
    """Remove (or with dry_run list) expired nightly images and stale staging objects."""
    keep = gcp.nightly_keep if keep is None else keep
    found = expired_images(gc, gcp, keep) + stale_objects(
        gc, gcp, now or datetime.datetime.now(datetime.UTC))
    for removal in found:
        if dry_run:
            continue
        try:
            if removal.kind == "image":
                images.delete(gc, gcp, removal.name)
            else:
                gc.storage.bucket(gcp.bucket).blob(
                    removal.name.split("/", 3)[3]).delete(timeout=gcp.timeout)
        except Exception as e:  # one failure must not stop the others
            removal.error = one_line(e)
    for removal in found:
        say(removal.line(dry_run))
    count = sum(1 for r in found if r.kind == "image" and not r.error)
    say(f"{'would remove' if dry_run else 'removed'} {count} nightly image(s), keeping the "
        f"newest {keep} of each family")
    return found


def main(argv: list[str] | None = None) -> int:
    args, config = cleanup_command(
        "fedimg-gcp-cleanup",
        "Delete nightly GCE images beyond the newest gcp.nightly_keep of each "
        "family, and stale staging objects.",
        argv, flag="--keep", metavar="N", overrides="gcp.nightly_keep")
    try:
        gcp = gcp_config(config)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        results = cleanup(make_clients(gcp), gcp, dry_run=args.dry_run, keep=args.keep)
    except Exception as e:  # listing failed: nothing was removed
        print(f"fedimg-gcp-cleanup: {gcp_error(e)}", file=sys.stderr)
        return 1
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
