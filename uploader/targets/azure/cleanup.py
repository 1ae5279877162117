"""fedimg-azure-cleanup: keep the newest azure.nightly_keep nightly versions of each definition.

    fedimg-azure-cleanup [--config FILE] [--dry-run] [--keep N]

Only image versions tagged fedimg-channel=nightly are considered (candidates, releases and
weeklies are never touched); within each image definition of the gallery the newest N (by
version number) stay and the rest are deleted. Staging blobs older than a day (a run that was
never retried) are deleted too. One printed line per removal; --dry-run prints "would remove"
and changes nothing. Exit 0 if everything listed was removed, 1 if something failed, 2 on a bad
config.
"""

from __future__ import annotations

import dataclasses
import datetime
import sys
from collections.abc import Callable

from shared.cli import cleanup_command
from shared.errors import ConfigError, one_line
from uploader.targets.azure import gallery, naming
from uploader.targets.azure.clients import AzureClients, azure_error, make_clients
from uploader.targets.azure.settings import AzureConfig, azure_config

STAGING_MAX_AGE = datetime.timedelta(days=1)


@dataclasses.dataclass
class Removal:
    kind: str  # "version" or "blob"
    name: str
    detail: str
    error: str | None = None

    def line(self, dry_run: bool) -> str:
        verb = "would remove" if dry_run else ("FAILED to remove" if self.error else "removed")
        return f"{verb} {self.kind} {self.name} ({self.detail})" + (
            f": {self.error}" if self.error else "")


def _number(version: dict) -> tuple[int, ...]:
    return tuple(int(p) for p in version["name"].split("."))


def expired_versions(ac: AzureClients, azure: AzureConfig, keep: int) -> list[Removal]:
    found = []
    for definition in ac.compute.gallery_images.list_by_gallery(azure.resource_group,
                                                                azure.gallery):
        name = definition.as_dict()["name"]
        versions = [v.as_dict() for v in ac.compute.gallery_image_versions.list_by_gallery_image(
            azure.resource_group, azure.gallery, name)]
        nightly = sorted((v for v in versions
                          if (v.get("tags") or {}).get(naming.TAG_CHANNEL) == "nightly"),
                         key=_number, reverse=True)
        found += [Removal("version", f"{name}/{v['name']}",
                          (v.get("tags") or {}).get("fedimg-name", "")) for v in nightly[keep:]]
    return found


def stale_blobs(ac: AzureClients, now: datetime.datetime) -> list[Removal]:
    if not ac.container.exists():
        return []
    return [Removal("blob", blob.name, f"created {blob.creation_time}")
            for blob in ac.container.list_blobs()
            if blob.creation_time and now - blob.creation_time > STAGING_MAX_AGE]


def cleanup(ac: AzureClients, azure: AzureConfig, *, dry_run: bool = False,
            keep: int | None = None, now: datetime.datetime | None = None,
            say: Callable[[str], None] = print) -> list[Removal]:
    """Remove (or with dry_run list) expired nightly versions and stale staging blobs."""
    keep = azure.nightly_keep if keep is None else keep
    found = expired_versions(ac, azure, max(0, keep)) + stale_blobs(
        ac, now or datetime.datetime.now(datetime.UTC))
    for removal in found if not dry_run else []:
        try:
            if removal.kind == "version":
                definition, version = removal.name.split("/")
                gallery.delete_version(ac, azure, definition, version)
            else:
                ac.container.delete_blob(removal.name)
        except Exception as e:  # one failure must not stop the others
            removal.error = one_line(e)
    for removal in found:
        say(removal.line(dry_run))
    count = sum(1 for r in found if r.kind == "version" and not r.error)
    say(f"{'would remove' if dry_run else 'removed'} {count} nightly image version(s), keeping "
        f"the newest {keep} of each definition")
    return found


def main(argv: list[str] | None = None) -> int:
    args, config = cleanup_command(
        "fedimg-azure-cleanup",
        "Delete nightly Azure image versions beyond the newest azure.nightly_keep "
        "of each image definition, and stale staging blobs.",
        argv, flag="--keep", metavar="N", overrides="azure.nightly_keep")
    try:
        azure = azure_config(config)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        results = cleanup(make_clients(azure), azure, dry_run=args.dry_run, keep=args.keep)
    except Exception as e:  # listing failed: nothing was removed
        print(f"fedimg-azure-cleanup: {azure_error(e)}", file=sys.stderr)
        return 1
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
